"""The container lifecycle: state record, overlay rootfs, OCI bundle, conmon, and back.

Ordering is the point of this module. Create records the container (`creating`) before mounting
or spawning anything and rolls everything back if a step fails; remove marks it `removing`
before tearing down. An engine that dies in between finds the row on restart and `Monitor.adopt`
finishes the job. When a container exits, its OCI runtime container is deleted and its rootfs unmounted
at once (the upper dir, the logs and the record stay), so a stopped container pins no mounts
and no runtime state, and `start` simply creates it again through conmon.

Operations on one container are serialised by a per-container lock, shared with the exit
monitor, so "stop" and "the monitor noticed the exit" cannot both record the exit.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from stackup.errors import Conflict, NotFound, RuntimeFailure
from stackup.runtime import labels
from stackup.runtime.engine.containers import conmon
from stackup.runtime.engine.containers import networking as containernet
from stackup.runtime.engine.containers.blueprint import build_config, healthcheck
from stackup.runtime.engine.containers.config import ContainerConfig, parse_signal
from stackup.runtime.engine.containers.networking import LazyNetworks
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.engine.containers.trash import Trash
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.state.events import EventBus
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.engine.volumes import VolumeManager
from stackup.runtime.wire.models import ContainerCreate, ExecRequest, ExecResult, TopResult
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import (
    ContainerNetwork,
    ContainerRecord,
    ContainerStatus,
    EventType,
    event_attributes,
    utcnow,
)

EXEC_OUTPUT_MAX = 16 << 20
"""Non-interactive exec returns output in one JSON answer; cap it so a runaway cannot OOM the engine."""


class ExitObserver(Protocol):
    """Told about every exit after it is recorded: the seam for restart policies and health checks.

    `requested` is True when the exit was asked for (stop, restart, remove), which is what
    `unless-stopped` and `on-failure` need to know. Called with the container's lock held.
    """

    def container_exited(self, record: ContainerRecord, *, requested: bool) -> None: ...


def _int_label(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class ContainerManager:
    """Every container operation of the engine; thread-safe."""

    def __init__(
        self,
        paths: EnginePaths,
        state: StateStore,
        events: EventBus,
        images: ImageStore,
        volumes: VolumeManager,
        *,
        networks: LazyNetworks,
    ) -> None:
        self.paths = paths
        self.networks = networks
        self._state = state
        self._events = events
        self._images = images
        self._volumes = volumes
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self.exit_observers: list[ExitObserver] = []
        self._trash = Trash(paths.containers / ".trash")
        self._releaser = cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="release")

    @contextlib.contextmanager
    def locked(self, container_id: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(container_id, threading.RLock())
        with lock:
            yield

    def emit(self, action: str, record: ContainerRecord, **extra: str) -> None:
        """Publish a container event (`create`, `start`, `die`, `exec_die`, ...)."""
        self._events.publish(EventType.CONTAINER, action, record.id, event_attributes(record, extra))

    def config_of(self, record: ContainerRecord) -> ContainerConfig:
        return ContainerConfig.model_validate(record.config)

    def log_path(self, record: ContainerRecord) -> Path:
        return self.log_file(record.id)

    def log_file(self, container_id: str) -> Path:
        return self.paths.container(container_id).dir / "ctr.log"

    # -- queries ----------------------------------------------------------------------------

    def get(self, ref: str) -> ContainerRecord:
        return self._state.find_container(ref)

    def list_containers(
        self,
        project: str | None = None,
        service: str | None = None,
        label_filter: Mapping[str, str | None] | None = None,
    ) -> list[ContainerRecord]:
        return self._state.list_containers(project=project, service=service, labels=label_filter)

    # -- create -----------------------------------------------------------------------------

    def create(self, request: ContainerCreate) -> ContainerRecord:
        """Record, wire the network, mount, and have the OCI runtime create it; undo everything on failure.

        Host port conflicts and an unknown `container:<ref>` are refused before the record is
        written, so a refused create changes nothing at all.
        """
        image = self._images.get(request.image)
        container_id = secrets.token_hex(32)
        bundle = self.paths.container(container_id)
        config = build_config(
            request,
            image,
            container_id=container_id,
            rootfs=bundle.rootfs,
            engine_root=self.paths.root,
            volume_dir=lambda name: Path(self._volumes.create(name).mountpoint),
            network_mode=containernet.base_mode(request),
        )
        joined = self._joined(request)
        if request.network_mode == "bridge" and request.networks:
            bindings = containernet.port_bindings(request.ports)
            containernet.check_ports(self.networks, self._state, containernet.service_of(request), bindings)
        record = ContainerRecord(
            id=container_id,
            name=request.name,
            image=request.image,
            image_id=image.id,
            project=request.labels.get(labels.PROJECT),
            service=request.labels.get(labels.SERVICE),
            number=_int_label(request.labels.get(labels.CONTAINER_NUMBER)),
            labels=request.labels,
            config=config.model_dump(mode="json"),
            restart=request.restart,
            healthcheck=healthcheck(request, image),
            network=containernet.unwired(request),
            hooks=request.hooks,
        )
        with self.locked(container_id):
            self._state.insert_container(record)  # before anything exists on the machine
            try:
                for directory in (bundle.upper, bundle.work, bundle.rootfs):
                    directory.mkdir(parents=True, exist_ok=True)
                record = self._wire(record, request, config, joined)
                pid = self._instantiate(record)
            except BaseException:
                self._teardown(record)
                self._state.delete_container(container_id)
                self._forget_lock(container_id)
                raise
            record = self._state.update_container(container_id, status=ContainerStatus.CREATED, pid=pid)
        self.emit("create", record, image=record.image)
        return record

    def _joined(self, request: ContainerCreate) -> ContainerRecord | None:
        """The container whose namespace `network_mode: container:<ref>` names (must exist)."""
        if not request.network_mode.startswith("container:"):
            return None
        return self._state.find_container(request.network_mode.removeprefix("container:"))

    def _wire(
        self,
        record: ContainerRecord,
        request: ContainerCreate,
        config: ContainerConfig,
        joined: ContainerRecord | None,
    ) -> ContainerRecord:
        """Give a recorded container its network and save the config that joins it.

        The record says it owns a namespace *before* `connect` makes one, so a teardown after a
        failure (or after a crash) always knows to disconnect it.
        """
        if joined is not None:
            wired = containernet.join(joined, request, config)
        elif request.network_mode == "bridge" and request.networks:
            owner = ContainerNetwork(mode=request.network_mode, owns_netns=True)
            record = self._state.update_container(record.id, network=owner)
            wired = containernet.connect(self.networks.get(), record.id, request, config)
        else:
            return record
        return self._state.update_container(
            record.id, config=wired.config.model_dump(mode="json"), network=wired.network
        )

    def _instantiate(self, record: ContainerRecord) -> int:
        """Mount the rootfs and have conmon run `<runtime> create`; return the container's pid."""
        bundle = self.paths.container(record.id)
        lower = self._images.layer_dirs(self._images.get(record.image_id))
        mount_rootfs(lower, bundle.upper, bundle.work, bundle.rootfs)  # a no-op if still mounted
        try:
            return conmon.create(self.config_of(record), bundle.dir, paths=self.paths)
        except BaseException:
            with contextlib.suppress(RuntimeFailure, OSError):
                conmon.delete(record.id, paths=self.paths)
            self._unmount(record)
            raise

    def _unmount(self, record: ContainerRecord) -> None:
        unmount_rootfs(self.paths.container(record.id).rootfs)  # a no-op if not mounted

    def _teardown(self, record: ContainerRecord) -> None:
        """Delete what exists on the machine for `record` (idempotent: any step may be absent).

        The network namespace goes last: the runtime must be done with it first."""
        conmon.delete(record.id, paths=self.paths)
        self._unmount(record)
        self._trash.discard(self.paths.container(record.id).dir)
        if containernet.needs_disconnect(self.networks, record):
            self.networks.get().disconnect(record.id)

    # -- start / stop -----------------------------------------------------------------------

    def start(self, ref: str) -> ContainerRecord:
        record = self.get(ref)
        with self.locked(record.id):
            record = self._state.get_container(record.id)
            if record.status is ContainerStatus.RUNNING:
                return record
            if record.status is ContainerStatus.EXITED:
                self._release(record)  # a stop defers it (see `stop`): the runtime must forget the id
                pid = self._instantiate(record)
                record = self._state.update_container(record.id, status=ContainerStatus.CREATED, pid=pid)
            if record.status is not ContainerStatus.CREATED:
                raise Conflict(f"container {record.name} cannot start while {record.status}")
            try:
                conmon.start(record.id, paths=self.paths)
            except RuntimeFailure:
                # An engine killed between `<runtime> start` and recording it left the record
                # `created` (found by bench/chaos.py): the runtime knows it started; say so.
                if not self._runtime_running(record.id):
                    raise
            record = self._state.update_container(
                record.id,
                status=ContainerStatus.RUNNING,
                started_at=utcnow(),
                exit_code=None,
                finished_at=None,
            )
        self.emit("start", record)
        return record

    def close(self) -> None:
        """On engine shutdown: finish deleting stopped containers' runtime records and removed
        containers' directories now."""
        self._releaser.shutdown(wait=True)
        self._trash.drain()

    def stop(self, ref: str, timeout_s: float | None = None) -> ContainerRecord:
        """Stop signal, SIGKILL after the grace period, and record the exit before returning.

        A container created but never started has no process of the user's to stop (the runtime's init
        waits on its exec fifo and ignores signals until then): a no-op, as in Docker, and `remove`
        deletes it. The planner leaves such containers behind when a dependency never got ready.
        """
        record = self.get(ref)
        with self.locked(record.id):
            record = self._state.get_container(record.id)
            if record.status is not ContainerStatus.RUNNING:
                return record
            config = self.config_of(record)
            grace = config.stop_grace_period if timeout_s is None else timeout_s
            conmon.stop(record.id, int(config.stop_signal), grace, paths=self.paths)
            # The exit is recorded now; deleting the runtime's record (a runtime process, tens of
            # ms) happens after the answer: a `down` stops dependencies only once their
            # dependents are stopped, so the stop's latency is on its critical path.
            record = self.record_exit(record.id, requested=True, release_now=False) or record
        return record

    def kill(self, ref: str, sig: str = "SIGKILL") -> None:
        """Send a signal; if it kills the container, the monitor records the exit."""
        record = self.get(ref)
        number = parse_signal(sig)
        with self.locked(record.id):
            record = self._state.get_container(record.id)
            if record.status is not ContainerStatus.RUNNING:
                raise Conflict(f"container {record.name} is not running ({record.status})")
            conmon.kill(record.id, int(number), paths=self.paths)
        self.emit("kill", record, signal=number.name)

    def restart(self, ref: str, timeout_s: float | None = None) -> ContainerRecord:
        """Stop then start. `restart_count` is left alone: as in Docker, it counts the restarts a
        restart policy made, not the ones a user asked for."""
        record = self.stop(ref, timeout_s)
        record = self.start(record.id)
        self.emit("restart", record)
        return record

    def remove(self, ref: str, *, force: bool = False) -> None:
        """Remove a container; a running one only with `force` (it is killed). Volumes stay."""
        record = self.get(ref)
        with self.locked(record.id):
            record = self._state.get_container(record.id)
            if record.status is ContainerStatus.RUNNING and not force:
                raise Conflict(f"container {record.name} is running: stop it first or force removal")
            self._state.update_container(record.id, status=ContainerStatus.REMOVING)
            self._teardown(record)
            self._state.delete_container(record.id)
        self._forget_lock(record.id)
        self.emit("destroy", record)

    def _forget_lock(self, container_id: str) -> None:
        """Drop a removed container's lock; a thread still holding it finds no record after."""
        with self._locks_guard:
            self._locks.pop(container_id, None)

    # -- exits ------------------------------------------------------------------------------

    def record_exit(
        self, container_id: str, *, requested: bool = False, release_now: bool = True
    ) -> ContainerRecord | None:
        """If the container has exited, record it, release its runtime state and rootfs, tell observers.

        Returns the new record, or None if it is still alive (or no longer exists). Safe to call
        from the monitor at any time: it re-reads everything under the container's lock.
        """
        with self.locked(container_id):
            try:
                record = self._state.get_container(container_id)
            except NotFound:
                return None  # removed meanwhile
            if not record.is_live:
                return None
            # Asked before reading the state: conmon writes the exit file and then exits, so one
            # that was already gone has written it. Asked after, it races that write (a stopped
            # container read before the file appeared, conmon gone by the check: exit code -1).
            # conmon gone with its exit file written: that file is the whole answer (no runtime
            # call); otherwise the runtime says whether the container still runs.
            conmon_alive = self._conmon_alive(record)
            known = conmon.exited(container_id, paths=self.paths)
            if conmon_alive and known.exit_code is None:
                # Running, or conmon is still writing the exit file: either way not exited yet,
                # and no runtime process is needed to know it (the monitor's liveness sweep asks
                # this of every running container every few seconds).
                return None
            current: conmon.ContainerState | None = known
            if conmon_alive or known.exit_code is None:
                try:
                    current = conmon.state(container_id, paths=self.paths)
                except NotFound:
                    current = None  # neither the runtime nor conmon remembers it: gone without an exit code
            if current is not None:
                if current.status is not conmon.Status.STOPPED:
                    return None
                if current.exit_code is None and conmon_alive:
                    return None  # stopped, and conmon is still writing the exit file
            exit_code = current.exit_code if current is not None else None
            finished = (current.finished_at if current is not None else None) or utcnow()
            if release_now:
                self._release(record)
            else:  # the mount goes now (an exited container pins none), the runtime's record later
                self._unmount(record)
                self._releaser.submit(self._release_exited, container_id)
            record = self._state.update_container(
                container_id,
                status=ContainerStatus.EXITED,
                pid=None,
                exit_code=exit_code if exit_code is not None else -1,
                finished_at=finished,
            )
            self.emit("die", record, exitCode=str(record.exit_code))
            for observer in self.exit_observers:
                observer.container_exited(record, requested=requested)
            return record

    def _conmon_alive(self, record: ContainerRecord) -> bool:
        pid_file = self.paths.container(record.id).dir / "conmon.pid"
        try:
            os.kill(int(pid_file.read_text().strip()), 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return False
        return True

    def _release(self, record: ContainerRecord) -> None:
        """Give back what an exited container holds: the runtime's record and the rootfs mount.
        Idempotent, and cheap when there is nothing left (no runtime process is started)."""
        conmon.delete(record.id, paths=self.paths)
        self._unmount(record)

    def _release_exited(self, container_id: str) -> None:
        """`_release` after a stop answered: if the container is still exited (a start or a
        remove in between already released it, under the same lock)."""
        with self.locked(container_id):
            try:
                record = self._state.get_container(container_id)
            except NotFound:
                return
            if record.status is ContainerStatus.EXITED:
                self._release(record)

    def recover(self, record: ContainerRecord) -> None:
        """Finish what a crashed engine left: roll back a half-made container, finish a removal,
        release the rootfs of an exited one, record exits that happened while nobody watched."""
        if record.status in (ContainerStatus.CREATING, ContainerStatus.REMOVING):
            with self.locked(record.id):
                self._teardown(record)
                self._state.delete_container(record.id)
            self._forget_lock(record.id)
            self.emit("destroy", record)
        elif record.status is ContainerStatus.EXITED:
            with self.locked(record.id):
                self._release(record)  # a stop's release may not have run before the engine died
        else:
            self.record_exit(record.id)
            if record.status is ContainerStatus.CREATED and self._runtime_running(record.id):
                with self.locked(record.id):  # started just before the engine died (see `start`)
                    record = self._state.update_container(
                        record.id, status=ContainerStatus.RUNNING, started_at=utcnow(), exit_code=None,
                        finished_at=None,
                    )  # fmt: skip
                self.emit("start", record)

    def _runtime_running(self, container_id: str) -> bool:
        try:
            return conmon.state(container_id, paths=self.paths).status is conmon.Status.RUNNING
        except (NotFound, RuntimeFailure):
            return False

    # -- inside the container ---------------------------------------------------------------

    def exec(self, ref: str, request: ExecRequest) -> ExecResult:
        """Run a process to completion without a TTY and return its output and exit code."""
        record = self.get(ref)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = conmon.exec_process(
                record.id,
                request.args,
                env=request.env,
                user=request.user,
                cwd=request.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                paths=self.paths,
            )
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(EXEC_OUTPUT_MAX), err.read(EXEC_OUTPUT_MAX)
        self.emit("exec_die", record, exitCode=str(code))
        return ExecResult(
            exit_code=code, stdout=stdout.decode(errors="replace"), stderr=stderr.decode(errors="replace")
        )

    def top(self, ref: str) -> TopResult:
        record = self.get(ref)
        if record.status is not ContainerStatus.RUNNING:
            raise Conflict(f"container {record.name} is not running ({record.status})")
        return conmon.top(record.id, paths=self.paths)
