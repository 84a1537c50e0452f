"""One engine's parts wired together: state, events, images, volumes, networks, containers,
the supervisor (health checks, restart policies) and the exit monitor.

Kept apart from the HTTP layer so the engine can be opened in-process (tests, a future
embedded mode) and so `api.py` depends on one object rather than on every part. The container
lifecycle calls a user makes go through the methods here rather than straight to the container
manager, because each also tells the supervisor (a user's stop is never undone by a restart
policy; a user's start resets the restart count) and runs the lifecycle hooks (`post_start` after
a start, `pre_stop` before a stop; see `hooks.py`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import IO

from stackup.errors import Conflict, NotFound
from stackup.runtime.engine.builder.sweep import sweep_workspaces
from stackup.runtime.engine.containers import attach, conmon, ociruntime
from stackup.runtime.engine.containers.copying import ContainerFiles
from stackup.runtime.engine.containers.execs import ExecSessions
from stackup.runtime.engine.containers.manager import ContainerManager
from stackup.runtime.engine.containers.networking import LazyNetworks
from stackup.runtime.engine.containers.syncing import SyncCounts
from stackup.runtime.engine.images.pulling import resume_unpacks
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.projectlocks import ProjectLocks
from stackup.runtime.engine.state.events import EventBus
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.engine.supervision.manager import Supervision
from stackup.runtime.engine.supervision.monitor import Monitor
from stackup.runtime.engine.volumes import VolumeManager
from stackup.runtime.wire.models import EngineInfo, VersionInfo
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerRecord, ContainerStatus, EventType, utcnow
from stackup.runtime.wire.streams import ExecCreate, ExecInspect

log = logging.getLogger(__name__)


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return out.splitlines()[0].strip() if out.strip() else "unavailable"


@functools.cache
def _tool_versions() -> tuple[str, str, str]:
    """(the configured OCI runtime with how it runs here, runc's version, conmon's version)."""
    runc = ociruntime.binary_of(ociruntime.RuntimeName.RUNC)
    return (
        ociruntime.configured().describe(),
        _first_line([runc, "--version"]) if runc else "not installed",
        _first_line([conmon.CONMON, "--version"]),
    )


def rss_bytes() -> int:
    """This process's resident set size, from /proc (no psutil dependency)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _stackup_version() -> str:
    try:
        return metadata.version("stackup")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass
class EngineService:
    paths: EnginePaths
    state: StateStore
    events: EventBus
    images: ImageStore
    volumes: VolumeManager
    networks: LazyNetworks
    containers: ContainerManager
    supervision: Supervision
    monitor: Monitor
    execs: ExecSessions
    files: ContainerFiles
    started_at: datetime = field(default_factory=utcnow)
    version: str = field(default_factory=_stackup_version)
    request_shutdown: Callable[[], None] = lambda: None
    project_locks: ProjectLocks = field(default_factory=ProjectLocks)

    @classmethod
    def open(cls, paths: EnginePaths) -> EngineService:
        """Open the state, finish what a previous engine left half-done, re-adopt containers and
        their networks, start what should come back, and start watching exits. The caller must
        hold the root's engine lock.

        Order matters: running containers are watched before the monitor records exits that
        happened while no engine ran (so restart policies apply to them), and networks are
        restored before any container is started again.
        """
        for directory in (paths.root, paths.run, paths.tmp, paths.volumes, paths.containers, paths.images):
            directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(paths.tmp / "build-contexts", ignore_errors=True)  # uploads of builds that died with us
        ociruntime.configured(paths)  # a bad STACKUP_OCI_RUNTIME stops the engine here, not at a create
        state = StateStore(paths.state_db)
        events = EventBus(state)
        images = ImageStore(paths)
        resume_unpacks(images)  # in the background: pulled images the last engine left packed
        volumes = VolumeManager(paths, state, events)
        networks = LazyNetworks(paths, state)
        containers = ContainerManager(paths, state, events, images, volumes, networks=networks)
        supervision = Supervision(containers, state, events)
        monitor = Monitor(containers, state)
        volumes.recover()
        if swept := sweep_workspaces(paths):
            log.info("removed the workspaces of %d interrupted build step(s)", len(swept))
        before = state.list_containers()
        supervision.hold_starts()  # restart policies wait for the networks (see `hold_starts`)
        supervision.adopt(before)
        monitor.adopt()
        records = state.list_containers()
        try:
            networks.restore(
                live_containers=[r.id for r in records],
                owners=[r.id for r in records if r.network is not None and r.network.owns_netns],
            )
        finally:
            supervision.allow_starts()
        supervision.start_on_boot([r for r in before if r.status is ContainerStatus.EXITED])
        monitor.start()
        events.publish(EventType.ENGINE, "start", str(os.getpid()))
        execs, files = ExecSessions(paths), ContainerFiles(paths, images)
        return cls(
            paths, state, events, images, volumes, networks, containers, supervision, monitor, execs, files
        )

    def close(self) -> None:
        self.supervision.close()
        self.monitor.stop()
        self.networks.close()
        self.containers.close()
        self.events.publish(EventType.ENGINE, "stop", str(os.getpid()))
        self.state.close()

    # -- container lifecycle as a user asks for it -------------------------------------------

    def inspect_container(self, ref: str) -> ContainerRecord:
        return self.supervision.live(self.containers.get(ref))

    def list_containers(
        self, project: str | None, service: str | None, labels: dict[str, str | None]
    ) -> list[ContainerRecord]:
        return [self.supervision.live(r) for r in self.containers.list_containers(project, service, labels)]

    def start_container(self, ref: str) -> ContainerRecord:
        """Start it, supervise it, run its `post_start` hooks (a failing one fails the start, the
        container keeps running); a container already running is left as it is."""
        if self.containers.get(ref).status is ContainerStatus.RUNNING:
            return self.inspect_container(ref)
        record = self.containers.start(ref)
        record = self.supervision.watch(record, reset_count=True)
        self.supervision.hooks.post_start_or_raise(record)
        return record

    def stop_container(self, ref: str, timeout_s: float | None) -> ContainerRecord:
        """`pre_stop` hooks while it still runs (never undone by its restart policy, which is
        cancelled first), then the stop signal."""
        record = self.containers.get(ref)
        self.supervision.stopping(record.id)
        self._pre_stop(record, timeout_s)
        return self.containers.stop(record.id, timeout_s)

    def _pre_stop(self, record: ContainerRecord, timeout_s: float | None) -> None:
        if record.status is ContainerStatus.RUNNING and record.hooks.pre_stop:
            grace = self.containers.config_of(record).stop_grace_period if timeout_s is None else timeout_s
            self.supervision.hooks.pre_stop(record, grace)

    def kill_container(self, ref: str, signal: str) -> None:
        """Docker counts a kill as a manual stop, whatever the signal: no restart follows."""
        record = self.containers.get(ref)
        self.supervision.stopping(record.id)
        self.containers.kill(record.id, signal)

    def restart_container(self, ref: str, timeout_s: float | None) -> ContainerRecord:
        record = self.containers.get(ref)
        self.supervision.stopping(record.id)
        self._pre_stop(record, timeout_s)
        record = self.containers.restart(record.id, timeout_s)
        record = self.supervision.watch(record, reset_count=False)
        self.supervision.hooks.post_start_or_raise(record)
        return record

    def remove_container(self, ref: str, *, force: bool) -> None:
        """Forget its supervision first, so no pending restart races the removal (unless the
        removal is going to be refused: a running container without `force` stays supervised)."""
        record = self.containers.get(ref)
        if force or record.status is not ContainerStatus.RUNNING:
            self.supervision.forget(record.id)
        self.containers.remove(record.id, force=force)
        self.execs.forget_container(record.id)

    # -- exec sessions (streamed over upgraded connections, see `api/streams.py`) -------------

    def create_exec(self, ref: str, request: ExecCreate) -> ExecInspect:
        """A session to start later; the container must be running now."""
        record = self.containers.get(ref)
        if record.status is not ContainerStatus.RUNNING:
            raise Conflict(f"container {record.name} is not running ({record.status})")
        session = self.execs.create(record.id, request)
        self.containers.emit("exec_create", record, execID=session.id)
        return session.inspect()

    def exec_ended(self, container_id: str, exec_id: str, exit_code: int) -> None:
        with contextlib.suppress(NotFound):
            self.containers.emit("exec_die", self.containers.get(container_id), execID=exec_id,
                                 exitCode=str(exit_code))  # fmt: skip

    def resize_exec(self, exec_id: str, rows: int, cols: int) -> None:
        running = self.execs.running(exec_id)
        running.resize(rows, cols)

    def copy_to(self, ref: str, path: str, archive: IO[bytes], *, keep_owner: bool = False) -> None:
        """Extract a tar stream into directory `path` of the container (see `copying.py`)."""
        record = self.containers.get(ref)
        with self.containers.locked(record.id):
            record = self.state.get_container(record.id)
            self.files.copy_to(record, path, archive, keep_owner=keep_owner)
        self.containers.emit("extract-to-dir", record, path=path)

    def sync(self, ref: str, path: str, archive: IO[bytes]) -> SyncCounts:
        """Apply a batch of file changes under `path` (`stackup watch`; see `syncing.py`). No
        event: a watch session syncs on every save, and the events table is not a change log."""
        record = self.containers.get(ref)
        with self.containers.locked(record.id):
            record = self.state.get_container(record.id)
            return self.files.sync(record, path, archive)

    def copy_from(self, ref: str, path: str, out: IO[bytes]) -> None:
        """Write `path` of the container as a tar stream into `out`."""
        record = self.containers.get(ref)
        with self.containers.locked(record.id):
            record = self.state.get_container(record.id)
            self.files.copy_from(record, path, out)
        self.containers.emit("archive-path", record, path=path)

    def resize_container(self, ref: str, rows: int, cols: int) -> None:
        """Resize the main process's terminal (through conmon's control fifo)."""
        record = self.containers.get(ref)
        if record.status is not ContainerStatus.RUNNING:
            raise Conflict(f"container {record.name} is not running ({record.status})")
        if not self.containers.config_of(record).tty:
            raise Conflict(f"container {record.name} has no TTY to resize")
        attach.resize(self.paths.container(record.id).dir, rows, cols)

    def version_info(self) -> VersionInfo:
        oci_runtime, runc_version, conmon_version = _tool_versions()
        return VersionInfo(
            version=self.version,
            python=platform.python_version(),
            oci_runtime=oci_runtime,
            runc=runc_version,
            conmon=conmon_version,
        )

    def engine_info(self) -> EngineInfo:
        records = self.state.list_containers()
        return EngineInfo(
            pid=os.getpid(),
            root=str(self.paths.root),
            socket=str(self.paths.socket),
            started_at=self.started_at,
            rss_bytes=rss_bytes(),
            containers=len(records),
            running=sum(r.status is ContainerStatus.RUNNING for r in records),
            volumes=len(self.state.list_volumes()),
            images=len(self.images.list()),
            oci_runtime=_tool_versions()[0],
        )
