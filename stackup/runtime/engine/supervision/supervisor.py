"""The engine's supervisor: health checks while containers run, restarts when they exit.

It lives in stackupd, so it keeps working while no CLI runs; it holds no state the engine
cannot rebuild (re-adoption calls `watch` again with the recorded restart count). It does not
detect exits itself: the exit monitor does, and tells it through `on_exit` (or the
`ExitObserver` method `container_exited`). It does not start containers itself either: after
the backoff, a timer thread calls the engine's `start_container`.

Everything it has to say goes through `on_event(container_id, action, attributes)`:
  - `health_status: <status>` when a probe changes the status (Docker's action text);
  - `restart` after an automatic restart succeeded (`restartCount` attribute), so the engine
    can persist the count;
  - `restart-failed` when starting it again failed (`error`); the container stays exited, as
    with Docker.
`health(id)` and `restart_count(id)` are live views for `ps` and `inspect`.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from stackup.errors import StackupError
from stackup.runtime.engine.containers import conmon
from stackup.runtime.engine.supervision.health import (
    NO_HEALTH,
    Clock,
    HealthChecker,
    HealthConfig,
    HealthState,
    ProbeTimeout,
    Sleep,
    interruptible_sleep,
)
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerRecord, utcnow
from stackup.runtime.wire.restart import Backoff, RestartPolicy, should_restart

log = logging.getLogger("stackupd.supervisor")

StartContainer = Callable[[str], object]
"""Starts an exited container again (the engine's `ContainerManager.start`); raises on failure."""
ContainerExecProbe = Callable[[str, Sequence[str], float], tuple[int, str]]
"""`(container_id, args, timeout) -> (exit code, output)`; see `health.ExecProbe`."""
OnEvent = Callable[[str, str, Mapping[str, str]], None]
"""`(container_id, action, attributes)`, the shape of `EventBus.publish` for containers."""


@dataclass(eq=False)
class _Watched:
    """Mutable bookkeeping for one container; only touched with the supervisor's lock held."""

    policy: RestartPolicy
    health_config: HealthConfig | None
    restart_count: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    stopped_by_user: bool = False
    health: HealthState = NO_HEALTH
    checker: HealthChecker | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


class Supervisor:
    """Health checks and restart policies for every container the engine asks it to watch."""

    def __init__(
        self,
        start_container: StartContainer,
        exec_probe: ContainerExecProbe,
        on_event: OnEvent,
        clock: Clock = utcnow,
        *,
        sleep: Sleep = interruptible_sleep,
    ) -> None:
        self._start = start_container
        self._exec = exec_probe
        self._emit = on_event
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._watched: dict[str, _Watched] = {}

    # -- lifecycle hooks ---------------------------------------------------------------------

    def watch(
        self,
        container_id: str,
        policy: RestartPolicy,
        health_config: HealthConfig | None,
        *,
        started_at: datetime | None = None,
        restart_count: int = 0,
    ) -> None:
        """Supervise a container that a user (or the engine at boot) has just started.

        A user's start resets the restart count, as in Docker; re-adoption passes the recorded
        count and start time. Watching again replaces the previous watch and its pending restart.
        """
        entry = _Watched(policy=policy, health_config=health_config, restart_count=restart_count)
        with self._lock:
            old = self._watched.pop(container_id, None)
            self._watched[container_id] = entry
            if old is not None:
                old.cancel.set()
                entry.health = old.health
            self._start_checker(container_id, entry, started_at or self._clock())
        if old is not None and old.checker is not None:
            old.checker.stop(timeout=0)

    def on_exit(self, container_id: str, exit_code: int, ran_for: float, *, requested: bool = False) -> bool:
        """The container exited after running `ran_for` seconds; schedule a restart if due.

        `requested` marks an exit the user asked for (stop, restart, remove). Returns whether a
        restart was scheduled. Exits of containers nobody watches are ignored.
        """
        with self._lock:
            entry = self._watched.get(container_id)
            if entry is None:
                return False
            checker, entry.checker = entry.checker, None
            if checker is not None:
                entry.health = checker.state
            entry.stopped_by_user = entry.stopped_by_user or requested
            due = should_restart(entry.policy, exit_code, entry.restart_count, entry.stopped_by_user)
            if due:
                entry.backoff = entry.backoff.after_run(ran_for)
                entry.restart_count += 1
                delay, cancel = entry.backoff.delay, entry.cancel
        if checker is not None:
            checker.stop(timeout=0)
        if not due:
            return False
        timer = threading.Thread(
            target=self._restart_later,
            args=(container_id, delay, cancel),
            name=f"restart-{container_id[:12]}",
            daemon=True,
        )
        timer.start()
        return True

    def container_exited(self, record: ContainerRecord, *, requested: bool) -> None:
        """`ContainerManager.exit_observers` protocol: `on_exit` from the recorded exit."""
        ran_for = 0.0
        if record.started_at is not None and record.finished_at is not None:
            ran_for = max((record.finished_at - record.started_at).total_seconds(), 0.0)
        self.on_exit(record.id, record.exit_code if record.exit_code is not None else -1, ran_for,
                     requested=requested)  # fmt: skip

    def stop_by_user(self, container_id: str) -> None:
        """The user stopped (or is stopping) it: cancel a pending restart and probes, restart no more."""
        with self._lock:
            entry = self._watched.get(container_id)
            if entry is None:
                return
            entry.stopped_by_user = True
            entry.cancel.set()
            checker, entry.checker = entry.checker, None
            if checker is not None:
                entry.health = checker.state
        if checker is not None:
            checker.stop(timeout=0)

    def forget(self, container_id: str) -> None:
        """The container is removed: drop everything about it."""
        self.stop_by_user(container_id)
        with self._lock:
            self._watched.pop(container_id, None)

    def close(self, timeout: float = 5.0) -> None:
        """Engine shutdown: stop every probe and pending restart (containers keep running).

        Unlike a user's stop, this waits (up to `timeout` each) for probes in flight, so no
        `<runtime> exec` outlives the engine's state.
        """
        with self._lock:
            entries = list(self._watched.values())
            self._watched.clear()
        for entry in entries:
            entry.cancel.set()
            if entry.checker is not None:
                entry.checker.stop(timeout)

    # -- views -------------------------------------------------------------------------------

    def restart_count(self, container_id: str) -> int:
        """Automatic restarts since the last user start (Docker's `RestartCount`)."""
        with self._lock:
            entry = self._watched.get(container_id)
            return entry.restart_count if entry is not None else 0

    def health(self, container_id: str) -> HealthState:
        """The live health state; `none` for a container without a check or not watched."""
        with self._lock:
            entry = self._watched.get(container_id)
            if entry is None:
                return NO_HEALTH
            return entry.checker.state if entry.checker is not None else entry.health

    # -- internals ---------------------------------------------------------------------------

    def _start_checker(self, container_id: str, entry: _Watched, started_at: datetime) -> None:
        """Begin probing (lock held); the state continues from `entry.health`, back at `starting`."""
        if entry.health_config is None:
            entry.health = NO_HEALTH
            return
        initial = entry.health.restarted()
        entry.health = initial

        def probe(args: Sequence[str], timeout: float) -> tuple[int, str]:
            return self._exec(container_id, args, timeout)

        def changed(state: HealthState) -> None:
            self._emit(container_id, f"health_status: {state.status}", {})

        entry.checker = HealthChecker(
            entry.health_config,
            probe,
            changed,
            started_at=started_at,
            initial=initial,
            clock=self._clock,
            sleep=self._sleep,
            name=f"health-{container_id[:12]}",
        )
        entry.checker.start()

    def _restart_later(self, container_id: str, delay: float, cancel: threading.Event) -> None:
        if not self._sleep(delay, cancel):
            return
        with self._lock:
            entry = self._watched.get(container_id)
            if entry is None or entry.cancel is not cancel or cancel.is_set():
                return
            count = entry.restart_count
        try:
            self._start(container_id)
        except (StackupError, OSError) as exc:
            log.error("restarting container %s failed: %s", container_id[:12], exc)
            self._emit(container_id, "restart-failed", {"error": str(exc)})
            return
        with self._lock:
            entry = self._watched.get(container_id)
            if entry is None or entry.cancel is not cancel or cancel.is_set():
                return
            self._start_checker(container_id, entry, self._clock())
        self._emit(container_id, "restart", {"restartCount": str(count)})


# -- the real probe: `<runtime> exec` with a timeout -----------------------------------------


def _read_head(handle: IO[bytes], limit: int) -> str:
    handle.seek(0)
    return handle.read(limit).decode(errors="replace")


def runtime_exec_probe(paths: EnginePaths, *, output_limit: int = 4097) -> ContainerExecProbe:
    """An exec probe for containers of the engine at `paths`.

    The probe runs with the user, environment, working directory and capabilities of the
    container's own config.json, which is what Docker gives a probe. Output (stdout and stderr
    interleaved, as Docker does) goes to a temporary file so a chatty probe cannot fill memory;
    one byte more than the cap is read so truncation shows as "...". On timeout the probe's
    process, found through the runtime's pid file, is killed (`conmon.kill_exec`). The
    container's state is not asked first: a probe of a stopped container simply fails.
    """

    def probe(container_id: str, args: Sequence[str], timeout: float) -> tuple[int, str]:
        command = conmon.exec_command(
            container_id, tuple(args), kind="probe", bundle=paths.container(container_id).dir, paths=paths
        )
        with tempfile.TemporaryFile() as out:
            try:
                proc = command.popen(stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
                try:
                    code = proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    conmon.kill_exec(command.pid_file, proc)
                    raise ProbeTimeout(_read_head(out, output_limit)) from None
            finally:
                command.cleanup()
            return code, _read_head(out, output_limit)

    return probe
