"""Noticing exits: re-adoption when the engine starts, and an exit watcher while it runs.

conmon writes `<run>/exits/<id>` when a container's init dies, whether or not an engine is
alive, so the exit directory is the single source of "something exited". On start, `adopt` walks
every recorded container: a live one whose exit file appeared while the engine was down gets the
exit code from that file (never lost), a half-created one is rolled back, a half-removed one is
finished. While running, a thread waits on an inotify watch of the exit directory
(`exitwatch.py`) and records each exit as its file appears; every few seconds it also looks at
the whole directory (skipping files already dealt with) and checks that the conmon of each
running container is alive, since a conmon killed with SIGKILL never writes an exit file.
Without inotify it falls back to looking at the directory every 150 ms.

Restart policies and health checks (later) hang off `ContainerManager.exit_observers`; this
module only detects and records.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

from stackup.errors import NotFound, StackupError
from stackup.runtime.engine.containers.conmon import RuntimeDirs
from stackup.runtime.engine.containers.logpolicy import LogPolicy
from stackup.runtime.engine.containers.logrotate import CHECK_EVERY_S, LogRotator, Watched
from stackup.runtime.engine.containers.manager import ContainerManager
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.engine.supervision.exitwatch import ExitWatch
from stackup.runtime.wire.records import ContainerStatus

log = logging.getLogger("stackupd.monitor")

POLL_INTERVAL_S = 0.15
LIVENESS_EVERY = 20
"""Check conmon liveness every this many polls (3 s): it only matters after a conmon crash."""
ROTATE_EVERY = max(1, round(CHECK_EVERY_S / POLL_INTERVAL_S))
"""Check log sizes every this many polls; the running set is refreshed at each liveness check."""


class Monitor:
    """Re-adopt containers at start, then record exits as they happen."""

    def __init__(
        self, containers: ContainerManager, state: StateStore, *, interval_s: float = POLL_INTERVAL_S
    ):
        self._containers = containers
        self._state = state
        self._exits = RuntimeDirs.of(containers.paths).exits
        self._interval = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.rotator = LogRotator()
        self._policies: dict[str, LogPolicy] = {}
        #: Exit files already dealt with, by name -> (inode, mtime): a scan skips them. A restarted
        #: container's next exit file is a new file.
        self._handled: dict[str, tuple[int, int]] = {}

    def adopt(self) -> None:
        """Reconcile every recorded container with the machine; errors are logged, not fatal,
        because one broken container must not keep the engine from serving the others."""
        for record in self._state.list_containers():
            try:
                self._containers.recover(record)
            except (StackupError, OSError) as exc:
                log.error("re-adopting container %s (%s) failed: %s", record.name, record.id[:12], exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="exit-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def poll_once(self, *, check_liveness: bool = False) -> None:
        """Record the exit of every container that has an exit file not yet dealt with (and,
        optionally, of those whose conmon is gone)."""
        files: dict[str, tuple[int, int]] = {}
        with contextlib.suppress(FileNotFoundError), os.scandir(self._exits) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    info = entry.stat()
                    files[entry.name] = (info.st_ino, info.st_mtime_ns)
        self._handled = {name: key for name, key in self._handled.items() if files.get(name) == key}
        candidates = {name for name in files if name not in self._handled}
        if check_liveness:
            candidates.update(self._state.container_ids(ContainerStatus.RUNNING))
        for container_id in sorted(candidates):
            if self.record(container_id) and container_id in files:
                self._handled[container_id] = files[container_id]

    def record(self, container_id: str) -> bool:
        """Record the container's exit if it has exited; True when its exit file needs no
        further look (recorded now or before, or the container is gone)."""
        try:
            record = self._state.get_container(container_id)
        except NotFound:
            # No record: its removal finished; the file would otherwise be looked at forever.
            (self._exits / container_id).unlink(missing_ok=True)
            return False
        if not record.is_live:
            return True
        try:
            return self._containers.record_exit(container_id) is not None
        except (StackupError, OSError) as exc:
            log.error("recording the exit of %s failed: %s", container_id[:12], exc)
            return False

    def refresh_logs(self) -> None:
        """Tell the log rotator which containers run now, with their logging policies."""
        running: dict[str, Watched] = {}
        for container_id in self._state.container_ids(ContainerStatus.RUNNING):
            policy = self._policies.get(container_id)
            try:
                record = self._state.get_container(container_id) if policy is None else None
                if record is not None:
                    policy = self._policies[container_id] = self._containers.config_of(record).log_policy
            except (StackupError, ValueError) as exc:
                log.error("container %s: no log policy: %s", container_id[:12], exc)
                continue
            if policy is not None:
                running[container_id] = Watched(self._containers.log_file(container_id), policy)
        self._policies = {cid: p for cid, p in self._policies.items() if cid in running}
        self.rotator.set_running(running)

    def _settled(self, container_id: str) -> bool:
        """`record`, and whether nothing is left to retry (recorded, or the file is gone)."""
        return self.record(container_id) or not (self._exits / container_id).exists()

    def _run(self) -> None:
        try:
            watch: ExitWatch | None = ExitWatch(self._exits)
        except OSError as exc:
            log.warning("no inotify watch on %s (%s): polling it every %gs", self._exits, exc, self._interval)
            watch = None
        try:
            self._loop(watch)
        finally:
            if watch is not None:
                watch.close()

    def _loop(self, watch: ExitWatch | None) -> None:
        """Ticks every `interval` for log rotation, liveness and (without inotify) the exit
        directory; exit files seen by the watch are recorded as they come, between ticks."""
        polls = 0
        next_tick = time.monotonic() + self._interval
        retry: set[str] = set()  # written, but not recorded yet (e.g. an error): again at each tick
        while not self._stopping.is_set():
            if watch is None:
                if self._stopping.wait(self._interval):
                    return
            else:
                written = watch.wait(next_tick - time.monotonic())
                if written is None:  # the kernel dropped events: look at the whole directory
                    self.poll_once()
                retry.update(cid for cid in sorted(written or ()) if not self._settled(cid))
                if time.monotonic() < next_tick:
                    continue
                retry = {cid for cid in sorted(retry) if not self._settled(cid)}
            next_tick = time.monotonic() + self._interval
            polls += 1
            liveness = polls % LIVENESS_EVERY == 0
            if watch is None or liveness:
                self.poll_once(check_liveness=liveness)
            if polls % ROTATE_EVERY == 0:
                if liveness or polls == ROTATE_EVERY or polls % (ROTATE_EVERY * 4) == 0:
                    self.refresh_logs()
                self.rotator.check()
