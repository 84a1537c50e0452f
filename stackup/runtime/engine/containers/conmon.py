"""The life of one container: conmon holds it, the OCI runtime drives it, files remember it.

Why conmon: a container must outlive the process that started it (the CLI, a test, stackupd).
conmon double-forks, becomes a child subreaper for the container's init, holds its stdio, writes
the k8s-file log and, when init dies, the exit code to `<exit-dir>/<id>`. So `state` can report
an exit that happened while no stackup process was alive, exactly as Podman's `checkExitFile`.

Sequence (Podman's `createOCIContainer`, minus what we do not need):
  `create`  writes the bundle, spawns conmon in a new session and waits only for the short-lived
            intermediate process; conmon runs `<runtime> create` and reports the container's pid
            (or the runtime's error) on the `_OCI_SYNCPIPE` socket. No start pipe: that exists so Podman can
            move conmon into a cgroup before it forks, which we do not do.
  `start`   `<runtime> start`. Between the two, the network layer may configure `/proc/<pid>/ns/net`.
  `stop`    the stop signal, then SIGKILL after the grace period (busybox `sleep` as PID 1 ignores
            SIGTERM: the kernel drops signals PID 1 has no handler for).
  `delete`  `<runtime> delete --force`, then the exit files and the cgroups it left behind.

The runtime is crun or runc (`ociruntime.py` picks it and knows how to run it); its state lives
under `$STACKUP_ROOT/run/<runtime>` (never the system's /run/crun or /run/runc), so two engines
with different roots cannot see, let alone delete, each other's containers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict

from stackup.errors import Conflict, NotFound, RuntimeFailure
from stackup.runtime.engine.containers import cgroups, ociruntime, pidwatch
from stackup.runtime.engine.containers.config import ContainerConfig
from stackup.runtime.engine.containers.oci import exec_process_spec, write_bundle
from stackup.runtime.engine.containers.ociruntime import OciRuntime
from stackup.runtime.engine.containers.seccomp_bpf import cache_for
from stackup.runtime.wire.models import TopResult
from stackup.runtime.wire.paths import EnginePaths

CONMON = "/usr/bin/conmon"
#: How long `<runtime> create` under conmon may take before we give up (image on slow disk).
CREATE_TIMEOUT = 30.0
#: After SIGKILL the kernel tears a process down in milliseconds; this only bounds a wedged conmon.
KILL_TIMEOUT = 10.0
_POLL = 0.005
_STATE_PROBE = 0.25  # seconds between `<runtime> state` checks while waiting for an exit file
#: How each runtime says "no such container" (runc; crun, which cannot open its status file).
_UNKNOWN_CONTAINER = ("does not exist", "No such file or directory")
RUNTIME_LOG = "runtime.log"
"""The OCI runtime's own log (`--log`) in the bundle: its reason when `create` fails under conmon."""
_DETAIL_MAX = 2000
log = logging.getLogger("stackupd.conmon")


class Status(StrEnum):
    """The OCI runtime states (runtime-spec `runtime.md`)."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class ContainerState(BaseModel):
    """What is known about a container right now; `exit_code` only once conmon has recorded it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    status: Status
    pid: int | None = None
    bundle: Path | None = None
    exit_code: int | None = None
    finished_at: datetime | None = None
    oom_killed: bool = False


class RuntimeDirs(BaseModel):
    """Where conmon and the engine keep per-container runtime files, all under one engine root
    (the OCI runtime's own state root is `OciRuntime.root`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exits: Path
    persist: Path
    sockets: Path
    #: pid and process.json files of `<runtime> exec` calls in flight.
    execs: Path
    #: Compiled seccomp filters by profile digest (`seccomp_bpf.py`).
    seccomp: Path

    @classmethod
    def of(cls, paths: EnginePaths | None = None) -> RuntimeDirs:
        run = (paths or EnginePaths.from_env()).run
        return cls(
            exits=run / "exits", persist=run / "persist", sockets=run / "sockets", execs=run / "exec",
            seccomp=run / "seccomp",
        )  # fmt: skip

    def exit_file(self, container_id: str) -> Path:
        return self.exits / container_id

    def persist_dir(self, container_id: str) -> Path:
        return self.persist / container_id


def conmon_command(
    cfg: ContainerConfig, bundle_dir: Path, dirs: RuntimeDirs, log_path: Path, runtime_options: list[str]
) -> list[str]:
    """The conmon invocation for `cfg` (Podman's flags; `runtime_options` from
    `OciRuntime.create_options`: the runtime gets our `--root` through conmon)."""
    command = [
        CONMON, "--api-version", "1", "-c", cfg.id, "-u", cfg.id, *runtime_options,
        "--runtime-arg", "--log", "--runtime-arg", str(bundle_dir / RUNTIME_LOG),
        "-b", str(bundle_dir), "-p", str(bundle_dir / "pidfile"), "-P", str(bundle_dir / "conmon.pid"),
        "-n", cfg.name, "--exit-dir", str(dirs.exits), "--persist-dir", str(dirs.persist_dir(cfg.id)),
        "--socket-dir-path", str(dirs.sockets), "--full-attach", "--log-level", "error",
    ]  # fmt: skip
    policy = cfg.log_policy  # bounded as Docker's json-file (`logpolicy.py`; N files: `logrotate.py`)
    command += ["-l", f"k8s-file:{log_path}"] if policy.keeps_log else ["-l", "none"]
    if policy.conmon_truncates:
        command += ["--log-size-max", str(policy.max_size)]
    if cfg.tty:
        command.append("-t")
    if cfg.stdin_open:
        # Compose's stdin_open is Docker's OpenStdin without StdinOnce: an attached client that
        # leaves does not close the container's input (see `attach.py`).
        command += ["-i", "--leave-stdin-open"]
    return command


def _read_sync(sock: socket.socket, deadline: float) -> dict[str, Any]:
    """One JSON line from conmon's sync socket: `{"data": pid}` or `{"data": -1, "message": ...}`."""
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            raise RuntimeFailure("conmon did not report the container's pid in time")
        chunk = sock.recv(4096)
        if not chunk:
            break
        buffer += chunk
    if not buffer.strip():
        raise RuntimeFailure("conmon exited without reporting the container's pid")
    message: dict[str, Any] = json.loads(buffer.split(b"\n", 1)[0])
    return message


def create(
    cfg: ContainerConfig, bundle_dir: Path, *, paths: EnginePaths | None = None, log_path: Path | None = None
) -> int:
    """Write the bundle, start conmon (which runs `<runtime> create`), return the container's pid.

    The container is left `created`: its namespaces and cgroup exist, init waits for `start`.
    The log defaults to `<bundle>/ctr.log`. The runtime is the configured one (`ociruntime`).
    """
    dirs = RuntimeDirs.of(paths)
    rt = ociruntime.configured(paths)
    for directory in (rt.root, dirs.exits, dirs.sockets, dirs.persist_dir(cfg.id)):
        directory.mkdir(parents=True, exist_ok=True)
    dirs.exit_file(cfg.id).unlink(missing_ok=True)
    (dirs.persist_dir(cfg.id) / "exit").unlink(missing_ok=True)
    write_bundle(cfg, bundle_dir, seccomp_bpf=cache_for(dirs.seccomp) if rt.takes_seccomp_bpf else None)
    log_path = log_path or bundle_dir / "ctr.log"
    ours, theirs = socket.socketpair()
    try:
        with (bundle_dir / "conmon.err").open("w") as errors, rt.create_options() as runtime_options:
            command = conmon_command(cfg, bundle_dir, dirs, log_path, runtime_options)
            env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                   "_OCI_SYNCPIPE": str(theirs.fileno())}  # fmt: skip
            # cwd "/": conmon and the runtime must not depend on the engine's working directory.
            intermediate = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                pass_fds=(theirs.fileno(),),
                env=env,
                cwd="/",
                start_new_session=True,
                close_fds=True,
            )
            theirs.close()
            # The intermediate exits as soon as the daemon has forked; reaping it leaves no zombie.
            intermediate.wait(timeout=CREATE_TIMEOUT)
            # The runtime has entered its namespace once conmon reports: `create` has finished.
            message = _read_sync(ours, time.monotonic() + CREATE_TIMEOUT)
    except (RuntimeFailure, subprocess.TimeoutExpired, ValueError) as exc:
        detail = _failure_text(bundle_dir, str(exc))
        _forget(cfg, paths)
        log.error("container %s (%s): create failed: %s", cfg.name, cfg.id[:12], detail)
        raise RuntimeFailure(f"container {cfg.name}: create failed: {detail}") from exc
    finally:
        ours.close()
        theirs.close()
    pid = int(message.get("data", -1))
    if pid <= 0:
        detail = _failure_text(bundle_dir, str(message.get("message", "")).strip())
        _forget(cfg, paths)
        log.error("container %s (%s): create failed: %s", cfg.name, cfg.id[:12], detail)
        raise RuntimeFailure(f"container {cfg.name}: create failed: {detail or 'no reason given'}")
    return pid


def _failure_text(bundle_dir: Path, reported: str) -> str:
    """What conmon reported, completed by conmon's own stderr and the OCI runtime's log: when
    conmon dies before reporting, those files hold the only explanation there is."""
    parts = [reported] if reported else []
    for name, label in (("conmon.err", "conmon"), (RUNTIME_LOG, "runtime log")):
        with contextlib.suppress(OSError):
            text = (bundle_dir / name).read_text(errors="replace").strip()
            if text and text not in reported:
                parts.append(f"{label}: {text[-_DETAIL_MAX:]}")
    return "; ".join(parts)


def _forget(cfg: ContainerConfig, paths: EnginePaths | None) -> None:
    """Undo a failed create: the runtime cleans its own record, but not the engine's cgroup parent."""
    delete(cfg.id, paths=paths)
    cgroups.remove(cfg.cgroup_path)
    cgroups.remove_if_empty(cfg.cgroup_parent)


def start(container_id: str, *, paths: EnginePaths | None = None) -> None:
    """Let a `created` container's init exec the user's process."""
    ociruntime.of_container(container_id, paths).run("start", container_id)


def _exit_record(dirs: RuntimeDirs, container_id: str) -> tuple[int, datetime] | None:
    path = dirs.exit_file(container_id)
    try:
        text = path.read_text().strip()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    if not text:  # conmon writes the file in one go, but a reader may still win the race
        return None
    return int(text), datetime.fromtimestamp(mtime, UTC)


def state(container_id: str, *, paths: EnginePaths | None = None) -> ContainerState:
    """The runtime's view, completed by conmon's exit file; NotFound if neither knows the container.

    A container without state in any runtime root is not asked about: that saves a process
    spawn per call in `wait` and `delete` after the runtime has forgotten it.
    """
    dirs = RuntimeDirs.of(paths)
    rt = ociruntime.of_container(container_id, paths)
    proc = rt.run("state", container_id, check=False) if rt.holds(container_id) else None
    record = _exit_record(dirs, container_id)
    oom = (dirs.persist_dir(container_id) / "oom").exists()
    if proc is None or proc.returncode != 0:
        if proc is not None and not any(text in proc.stderr for text in _UNKNOWN_CONTAINER):
            raise RuntimeFailure(f"{rt.name} state {container_id} failed: {proc.stderr.strip()}")
        if record is None:
            raise NotFound(f"no such container: {container_id}")
        return ContainerState(
            id=container_id, status=Status.STOPPED, exit_code=record[0], finished_at=record[1], oom_killed=oom
        )
    data = json.loads(proc.stdout)
    status = Status(data["status"])
    exit_code, finished = record if record and status is Status.STOPPED else (None, None)
    return ContainerState(
        id=container_id,
        status=status,
        pid=(data.get("pid") or None) if status is not Status.STOPPED else None,
        bundle=Path(data["bundle"]),
        exit_code=exit_code,
        finished_at=finished,
        oom_killed=oom,
    )


def _conmon_alive(bundle: Path | None) -> bool:
    try:
        pid = int((bundle / "conmon.pid").read_text()) if bundle else 0
    except (FileNotFoundError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait(
    container_id: str, timeout: float | None = None, *, paths: EnginePaths | None = None
) -> ContainerState:
    """Block until the container has stopped and conmon has recorded (and flushed) its exit.

    Returns early, without an exit code, if the container is stopped and conmon is gone (killed),
    since then no exit file will ever come. Raises RuntimeFailure on timeout.
    """
    paths = paths or EnginePaths.from_env()
    watched = pidwatch.watch(container_id, paths.container(container_id).dir, None)
    if watched is not None:  # conmon's pidfd turns readable when it exits, after the exit file
        with watched:
            if not watched.wait_conmon(timeout):
                raise RuntimeFailure(f"container {container_id} did not exit within {timeout}s")
        return exited(container_id, paths=paths)
    deadline = None if timeout is None else time.monotonic() + timeout
    dirs = RuntimeDirs.of(paths)
    next_probe = 0.0
    while True:
        if _exit_record(dirs, container_id) is not None:
            return state(container_id, paths=paths)
        now = time.monotonic()
        # The exit file is a cheap stat; `<runtime> state` is a process spawn. Asking it on every
        # 5 ms poll kept both cores busy when many containers stopped at once (`down`).
        if now >= next_probe:
            current = state(container_id, paths=paths)
            if current.status is Status.STOPPED and not _conmon_alive(current.bundle):
                return current
            next_probe = now + _STATE_PROBE
        if deadline is not None and now >= deadline:
            raise RuntimeFailure(f"container {container_id} did not exit within {timeout:g}s")
        time.sleep(_POLL)


def kill(container_id: str, sig: int | str = signal.SIGKILL, *, paths: EnginePaths | None = None) -> None:
    """Send `sig` to the container's init (or through catatonit, to the user's process)."""
    signame = str(int(sig)) if isinstance(sig, int) else sig
    ociruntime.of_container(container_id, paths).run("kill", container_id, signame)


def stop(
    container_id: str, sig: int = signal.SIGTERM, grace: float = 10.0, *, paths: EnginePaths | None = None
) -> ContainerState:
    """`sig`, then SIGKILL once `grace` seconds pass; returns the final (stopped) state.

    Through pidfds (`pidwatch`): no runtime process and no polling; the runtime is asked only
    when the pids cannot be trusted (then `_stop_via_runtime`).
    """
    paths = paths or EnginePaths.from_env()
    bundle = paths.container(container_id).dir
    init_pid = _pid_in(bundle / "pidfile")
    watched = pidwatch.watch(container_id, bundle, init_pid) if init_pid is not None else None
    if watched is None:
        return _stop_via_runtime(container_id, sig, grace, paths=paths)
    with watched:
        if watched.init is not None:
            if _runtime_created(container_id, paths):
                # init is still blocked in the runtime's exec fifo: only SIGKILL is delivered.
                sig, grace = signal.SIGKILL, 0.0
            for attempt_sig, timeout in ((sig, grace), (signal.SIGKILL, KILL_TIMEOUT)):
                if not watched.signal(int(attempt_sig)) or watched.wait_init(timeout):
                    break
            else:
                raise RuntimeFailure(f"container {container_id} outlived SIGKILL by {KILL_TIMEOUT:g}s")
        if not watched.wait_conmon(KILL_TIMEOUT):
            raise RuntimeFailure(f"conmon of container {container_id} did not exit within {KILL_TIMEOUT:g}s")
    return exited(container_id, paths=paths)


def exited(container_id: str, *, paths: EnginePaths | None = None) -> ContainerState:
    """The state of a container whose conmon is gone, from conmon's files alone (no runtime call):
    the exit code is None when conmon died without writing it."""
    dirs = RuntimeDirs.of(paths)
    record = _exit_record(dirs, container_id)
    return ContainerState(
        id=container_id,
        status=Status.STOPPED,
        exit_code=record[0] if record else None,
        finished_at=record[1] if record else None,
        oom_killed=(dirs.persist_dir(container_id) / "oom").exists(),
    )


def conmon_gone(container_id: str, *, paths: EnginePaths | None = None) -> bool:
    """Whether the container's conmon (identity checked) has exited: its exit file is final."""
    paths = paths or EnginePaths.from_env()
    bundle = paths.container(container_id).dir
    watched = pidwatch.watch(container_id, bundle, None) if (bundle / "conmon.pid").exists() else None
    if watched is None:
        return False
    with watched:
        return watched.conmon is None


def _pid_in(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _runtime_created(container_id: str, paths: EnginePaths) -> bool:
    """Whether the runtime holds the container `created` (its exec fifo still waits for `start`)."""
    return (ociruntime.of_container(container_id, paths).root / container_id / "exec.fifo").exists()


def _stop_via_runtime(container_id: str, sig: int, grace: float, *, paths: EnginePaths) -> ContainerState:
    """`stop` by asking the runtime (state, kill, wait): for pids that cannot be trusted."""
    current = state(container_id, paths=paths)
    if current.status is Status.STOPPED:
        return wait(container_id, KILL_TIMEOUT, paths=paths)
    if current.status is Status.CREATED:
        sig, grace = signal.SIGKILL, 0.0
    for attempt_sig, timeout in ((sig, grace), (signal.SIGKILL, KILL_TIMEOUT)):
        try:
            kill(container_id, int(attempt_sig), paths=paths)
        except RuntimeFailure:
            if state(container_id, paths=paths).status is not Status.STOPPED:
                raise
        try:
            return wait(container_id, timeout, paths=paths)
        except RuntimeFailure:
            if attempt_sig == signal.SIGKILL:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def delete(container_id: str, *, paths: EnginePaths | None = None) -> None:
    """Remove the container whatever its state: the runtime's record, conmon's files, its cgroups.

    A running container is killed first; we wait for conmon to write its exit file so it cannot
    reappear after we removed it. Deleting an unknown container is a no-op (cleanup is idempotent).
    """
    dirs = RuntimeDirs.of(paths)
    rt = ociruntime.of_container(container_id, paths)
    cgroup_path: str | None = None
    if rt.holds(container_id) and conmon_gone(container_id, paths=paths):
        # The common case (a stop or an exit came first): conmon is gone, its exit file final,
        # so the runtime's own record is all there is left; one runtime call.
        current = None
        cgroup_path = _cgroup_path((paths or EnginePaths.from_env()).container(container_id).dir)
        rt.run("delete", "--force", container_id, plain=True)
    else:
        try:
            current = state(container_id, paths=paths)
        except NotFound:
            current = None
    if current is not None and current.bundle is not None:
        cgroup_path = _cgroup_path(current.bundle)
        if current.status is not Status.STOPPED:
            rt.run("kill", container_id, "KILL", check=False)
        # Also when already stopped: conmon may still be draining stdio before it writes the file.
        # If conmon is wedged, delete --force below still removes the container.
        with contextlib.suppress(RuntimeFailure):
            wait(container_id, KILL_TIMEOUT, paths=paths)
        rt.run("delete", "--force", container_id)
    dirs.exit_file(container_id).unlink(missing_ok=True)
    persist = dirs.persist_dir(container_id)
    for leftover in (persist / "exit", persist / "oom"):
        leftover.unlink(missing_ok=True)
    if persist.is_dir():
        persist.rmdir()
    if cgroup_path:
        cgroups.remove(cgroup_path)
        cgroups.remove_if_empty(cgroup_path.rsplit("/", 1)[0] or "/")


def _cgroup_path(bundle: Path) -> str | None:
    try:
        path: str = json.loads((bundle / "config.json").read_text())["linux"]["cgroupsPath"]
    except (OSError, ValueError, KeyError):
        return None
    return path


@dataclass(frozen=True)
class ExecCommand:
    """One `<runtime> exec` ready to spawn: its argv, the files it uses, how to start it.

    The process is described by a process.json derived from the container's own (user, env,
    working directory, capabilities, rlimits), not by flags: crun's flags replace what runc's
    add to (`--env`, `--cap`) and crun has no `--additional-gids`, so a file is the one form both
    runtimes read the same way. `cleanup` removes the files once the process has been reaped.
    """

    argv: list[str]
    pid_file: Path
    process_file: Path
    runtime: OciRuntime

    def popen(
        self,
        *,
        stdin: IO[Any] | int | None = None,
        stdout: IO[Any] | int | None = None,
        stderr: IO[Any] | int | None = None,
        long_lived: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start it; `long_lived` for an exec without a time limit (see `OciRuntime.in_view`)."""
        return self.runtime.in_view(
            lambda: subprocess.Popen(self.argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd="/"),
            long_lived=long_lived,
        )

    def cleanup(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        self.process_file.unlink(missing_ok=True)


def exec_command(
    container_id: str,
    args: list[str] | tuple[str, ...],
    *,
    kind: str = "exec",
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: str | None = None,
    tty: bool = False,
    capabilities: tuple[str, ...] = (),
    console_size: tuple[int, int] | None = None,
    bundle: Path | None = None,
    paths: EnginePaths | None = None,
) -> ExecCommand:
    """The `<runtime> exec` for `args` in the running container (`kind` names its files).

    The user is resolved against the container's rootfs, like the container's own; `capabilities`
    are added to the ones the container has (`docker exec --privileged` adds all of them). A
    container that is not running is an error, not exit code 1, unless `bundle` is given: then
    the state is not asked for (a health probe, which wants the runtime's failure as its result).
    `console_size` (rows, columns) is the terminal's size from the first byte the process reads
    (runc would otherwise set it only after the process started).
    """
    dirs = RuntimeDirs.of(paths)
    if bundle is None:
        current = state(container_id, paths=paths)
        if current.status is not Status.RUNNING or current.bundle is None:
            raise Conflict(f"container {container_id} is not running ({current.status})")
        bundle = current.bundle
    rt = ociruntime.of_container(container_id, paths)
    try:
        config = json.loads((bundle / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise RuntimeFailure(f"container {container_id}: cannot read its config.json: {exc}") from exc
    process = exec_process_spec(
        config, bundle, args, env=env or {}, user=user, cwd=cwd, tty=tty, capabilities=capabilities
    )
    if tty and console_size is not None:
        process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    dirs.execs.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{container_id}-{uuid.uuid4().hex[:8]}"  # ids may hold dots: no with_suffix
    pid_file, process_file = dirs.execs / f"{stem}.pid", dirs.execs / f"{stem}.json"
    process_file.write_text(json.dumps(process))
    argv = rt.argv("exec", "--pid-file", str(pid_file), "--process", str(process_file), container_id)
    return ExecCommand(argv=argv, pid_file=pid_file, process_file=process_file, runtime=rt)


def exec_process(
    container_id: str,
    args: list[str] | tuple[str, ...],
    *,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: str | None = None,
    tty: bool = False,
    stdin: IO[Any] | int | None = None,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
    paths: EnginePaths | None = None,
) -> int:
    """Run `args` in the running container with its capabilities; return the process's exit code.

    stdio defaults to ours (passthrough). See `exec_command` for the user and a stopped container.
    """
    command = exec_command(container_id, args, env=env, user=user, cwd=cwd, tty=tty, paths=paths)
    try:
        with command.popen(stdin=stdin, stdout=stdout, stderr=stderr, long_lived=True) as proc:
            try:
                return proc.wait()
            except BaseException:  # e.g. Ctrl-C in `stackup exec`: do not leave it running
                proc.kill()
                raise
    finally:
        command.cleanup()


def kill_exec(pid_file: Path, proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a timed-out exec'd process inside the container, then reap `<runtime> exec` (killing
    it too if it lingers): killing the runtime's process alone would leave the process running."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    try:
        proc.wait(KILL_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def top(container_id: str, *, paths: EnginePaths | None = None) -> TopResult:
    """`ps -ef` restricted to the container's processes, as `runc ps` does it (crun's `ps` lists
    pids only): the runtime names the pids in the container's cgroup, `ps` describes them."""
    rt = ociruntime.of_container(container_id, paths)
    pids = {str(pid) for pid in json.loads(rt.run("ps", "--format", "json", container_id).stdout or "[]")}
    output = subprocess.run(["ps", "-ef"], capture_output=True, text=True, check=True).stdout.splitlines()
    if not output:
        return TopResult(titles=(), processes=())
    titles = tuple(output[0].split())
    pid_column = titles.index("PID") if "PID" in titles else 1
    rows = tuple(
        row
        for row in (tuple(line.split(None, len(titles) - 1)) for line in output[1:] if line.strip())
        if len(row) > pid_column and row[pid_column] in pids
    )
    return TopResult(titles=titles, processes=rows)


def list_ids(*, paths: EnginePaths | None = None) -> list[str]:
    """Every container id any runtime holds under this engine root (cleanup and re-adoption)."""
    ids: list[str] = []
    for rt in ociruntime.installed(paths):
        if rt.root.is_dir():
            ids += [line for line in rt.run("list", "--quiet").stdout.splitlines() if line.strip()]
    return ids
