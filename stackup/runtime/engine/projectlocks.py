"""Per-project locks held by client connections: two `up` of one project never interleave.

Why in the engine and tied to a connection: the engine is the one place every client of a root
reaches (local CLI, a remote one, the Python API, `watch`), and a lock that lives exactly as long
as the client's connection cannot outlive a crashed client: when a CLI is SIGKILLed the kernel
closes its socket, the engine's stream is cancelled and the lock is released. A lock file would
need the client on the engine's machine; a lease with a timeout would either expire under a long
`up` or block the next one long after a crash. An engine that dies drops every lock with itself,
and so do the clients' connections.

A dead client's last requests outlive it: the engine finishes a `stop` or `remove` it had begun.
So a released lock passes to the next holder only once every mutating request that was in
flight at the moment of release has finished (`Inflight`), else the next `up` would observe a
container as running that a moment later is stopped by the dead client's request (found by
`bench/chaos.py`: SIGKILL of the CLI during `down`). Such a request may even still sit unread
in the dead client's socket when its lock's connection is seen closed, hence a grace period
before the release. A live client pays neither: it releases the lock explicitly (`release`, with
the token its `held` line carried) once all its requests have been answered.

Waiters queue in arrival order (`asyncio.Lock` is fair), and each is told who holds the lock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from stackup.runtime.wire.models import LockState, ProjectLockStatus

log = logging.getLogger("stackupd.locks")

SETTLE_TIMEOUT_S = 120.0
"""At most this long a released lock waits for the requests in flight at its release."""
_SETTLE_POLL_S = 0.05
RELEASE_GRACE_S = 0.3


class Inflight:
    """The mutating requests being served now (`begin`/`end` from the API's middleware)."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._counter = itertools.count(1)

    def begin(self) -> int:
        ident = next(self._counter)
        self._ids.add(ident)
        return ident

    def end(self, ident: int) -> None:
        self._ids.discard(ident)

    def snapshot(self) -> frozenset[int]:
        return frozenset(self._ids)

    async def settle(self, snapshot: frozenset[int], timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Return once none of `snapshot` is still being served (or after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while snapshot & self._ids:
            if time.monotonic() >= deadline:
                log.warning(
                    "releasing a project lock while %d request(s) still run", len(snapshot & self._ids)
                )
                return
            await asyncio.sleep(_SETTLE_POLL_S)


@dataclass
class _Hold:
    """One acquisition of a lock: its token, and whether it was already given back."""

    token: str = field(default_factory=lambda: secrets.token_hex(16))
    released: bool = False


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holder: str = ""
    users: int = 0
    current: _Hold | None = None


class ProjectLocks:
    """Named locks, created on first use and dropped when nobody holds or waits for them."""

    KEEPALIVE_S = 5.0
    """How often a held lock's stream writes a line: a write to a vanished client is how the
    engine notices a peer that went away without closing (and releases the lock)."""

    def __init__(self, inflight: Inflight | None = None) -> None:
        self.inflight = inflight or Inflight()
        self._entries: dict[str, _Entry] = {}
        self._tickets = itertools.count(1)
        self._releases: set[asyncio.Task[None]] = set()

    def holder(self, project: str) -> str | None:
        entry = self._entries.get(project)
        return entry.holder if entry is not None and entry.lock.locked() else None

    async def hold(self, project: str, holder: str) -> AsyncIterator[ProjectLockStatus]:
        """Yield `waiting` (if someone holds it), then `held`, then keepalives until the consumer
        stops iterating (the client closed its connection): the lock is released then, once the
        requests in flight have finished."""
        entry = self._entries.setdefault(project, _Entry())
        entry.users += 1
        ticket = next(self._tickets)
        hold: _Hold | None = None
        try:
            if entry.lock.locked():
                yield ProjectLockStatus(state=LockState.WAITING, project=project, holder=entry.holder)
            await entry.lock.acquire()
            hold = entry.current = _Hold()
            entry.holder = holder or f"client #{ticket}"
            held = ProjectLockStatus(
                state=LockState.HELD, project=project, holder=entry.holder, token=hold.token
            )
            yield held
            while True:
                await asyncio.sleep(self.KEEPALIVE_S)
                yield held
        finally:
            # A task of its own: this generator is being cancelled, and must not await here.
            task = asyncio.get_running_loop().create_task(self._release(project, entry, hold))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    def release(self, project: str, token: str) -> bool:
        """Give the lock back now, for a live client done with it: all its requests have been
        answered, so there is nothing to wait for. False if `token` does not hold it (any more)."""
        entry = self._entries.get(project)
        hold = entry.current if entry is not None else None
        if (
            entry is None
            or hold is None
            or hold.released
            or not secrets.compare_digest(hold.token.encode(), token.encode())
        ):
            return False
        self._give_back(entry, hold)
        return True

    @staticmethod
    def _give_back(entry: _Entry, hold: _Hold) -> None:
        hold.released = True
        entry.current = None
        entry.holder = ""
        entry.lock.release()

    async def _release(self, project: str, entry: _Entry, hold: _Hold | None) -> None:
        if hold is not None and not hold.released:
            # A request the client sent just before it died may still sit unread in its socket
            # when the lock's connection is seen closed: let it begin before taking the snapshot.
            await asyncio.sleep(RELEASE_GRACE_S)
            await self.inflight.settle(self.inflight.snapshot())
            if not hold.released:
                self._give_back(entry, hold)
        entry.users -= 1
        if entry.users == 0 and self._entries.get(project) is entry:
            del self._entries[project]
