"""Per-project locks held by client connections: two `up` of one project never interleave.

Why in the engine and tied to a connection: the engine is the one place every client of a root
reaches (local CLI, a remote one, the Python API, `watch`), and a lock that lives exactly as long
as the client's connection cannot outlive a crashed client: when a CLI is SIGKILLed the kernel
closes its socket, the engine's stream is cancelled and the lock is released. A lock file would
need the client on the engine's machine; a lease with a timeout would either expire under a long
`up` or block the next one long after a crash. An engine that dies drops every lock with itself,
and so do the clients' connections.

Waiters queue in arrival order (`asyncio.Lock` is fair), and each is told who holds the lock.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from stackup.runtime.wire.models import LockState, ProjectLockStatus


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holder: str = ""
    users: int = 0


class ProjectLocks:
    """Named locks, created on first use and dropped when nobody holds or waits for them."""

    KEEPALIVE_S = 5.0
    """How often a held lock's stream writes a line: a write to a vanished client is how the
    engine notices a peer that went away without closing (and releases the lock)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._tickets = itertools.count(1)

    def holder(self, project: str) -> str | None:
        entry = self._entries.get(project)
        return entry.holder if entry is not None and entry.lock.locked() else None

    async def hold(self, project: str, holder: str) -> AsyncIterator[ProjectLockStatus]:
        """Yield `waiting` (if someone holds it), then `held`, then keepalives until the consumer
        stops iterating (the client closed its connection): the lock is released then."""
        entry = self._entries.setdefault(project, _Entry())
        entry.users += 1
        ticket = next(self._tickets)
        try:
            if entry.lock.locked():
                yield ProjectLockStatus(state=LockState.WAITING, project=project, holder=entry.holder)
            async with entry.lock:
                entry.holder = holder or f"client #{ticket}"
                try:
                    yield ProjectLockStatus(state=LockState.HELD, project=project, holder=entry.holder)
                    while True:
                        await asyncio.sleep(self.KEEPALIVE_S)
                        yield ProjectLockStatus(state=LockState.HELD, project=project, holder=entry.holder)
                finally:
                    entry.holder = ""
        finally:
            entry.users -= 1
            if entry.users == 0 and self._entries.get(project) is entry:
                del self._entries[project]
