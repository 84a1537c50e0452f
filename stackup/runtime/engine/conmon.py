"""The life of one container: conmon holds it, runc drives it, files remember it.

Why conmon: a container must outlive the process that started it (the CLI, a test, stackupd).
conmon double-forks, becomes a child subreaper for the container's init, holds its stdio, writes
the k8s-file log and, when init dies, the exit code to `<exit-dir>/<id>`. So `state` can report
an exit that happened while no stackup process was alive, exactly as Podman's `checkExitFile`.

Sequence (Podman's `createOCIContainer`, minus what we do not need):
  `create`  writes the bundle, spawns conmon in a new session and waits only for the short-lived
            intermediate process; conmon runs `runc create` and reports the container's pid (or
            runc's error) on the `_OCI_SYNCPIPE` socket. No start pipe: that exists so Podman can
            move conmon into a cgroup before it forks, which we do not do.
  `start`   `runc start`. Between the two, the network layer may configure `/proc/<pid>/ns/net`.
  `stop`    the stop signal, then SIGKILL after the grace period (busybox `sleep` as PID 1 ignores
            SIGTERM: the kernel drops signals PID 1 has no handler for).
  `delete`  `runc delete --force`, then the exit files and the cgroups runc left behind.

runc's state lives under `$STACKUP_ROOT/run/runc` (never the default /run/runc), so two engines
with different roots cannot see, let alone delete, each other's containers.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.engine import cgroups
from stackup.runtime.engine.api_models import TopResult
from stackup.runtime.engine.oci import rootfs_of, write_bundle
from stackup.runtime.engine.paths import EnginePaths
from stackup.runtime.engine.spec import ContainerConfig, resolve_user

RUNC = "/usr/sbin/runc"
CONMON = "/usr/bin/conmon"
#: How long `runc create` under conmon may take before we give up (image on slow disk, seccomp).
CREATE_TIMEOUT = 30.0
#: After SIGKILL the kernel tears a process down in milliseconds; this only bounds a wedged conmon.
KILL_TIMEOUT = 10.0
_POLL = 0.005
_STATE_PROBE = 0.25  # seconds between `runc state` checks while waiting for an exit file


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
    """Where runc and conmon keep per-engine state, all under one engine root."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runc_root: Path
    exits: Path
    persist: Path
    sockets: Path

    @classmethod
    def of(cls, paths: EnginePaths | None = None) -> RuntimeDirs:
        run = (paths or EnginePaths.from_env()).run
        return cls(
            runc_root=run / "runc", exits=run / "exits", persist=run / "persist", sockets=run / "sockets"
        )

    def exit_file(self, container_id: str) -> Path:
        return self.exits / container_id

    def persist_dir(self, container_id: str) -> Path:
        return self.persist / container_id


def runc(dirs: RuntimeDirs, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `runc --root <engine's root> ARGS`; on failure raise with runc's own message."""
    proc = subprocess.run(
        [RUNC, "--root", str(dirs.runc_root), *args], capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}"
        raise RuntimeFailure(f"runc {args[0]} failed: {message}")
    return proc


def conmon_command(cfg: ContainerConfig, bundle_dir: Path, dirs: RuntimeDirs, log_path: Path) -> list[str]:
    """The conmon invocation for `cfg` (Podman's flags; runc gets our `--root` through conmon)."""
    command = [
        CONMON, "--api-version", "1", "-c", cfg.id, "-u", cfg.id, "-r", RUNC,
        "-b", str(bundle_dir), "-p", str(bundle_dir / "pidfile"), "-P", str(bundle_dir / "conmon.pid"),
        "-n", cfg.name, "--exit-dir", str(dirs.exits), "--persist-dir", str(dirs.persist_dir(cfg.id)),
        "-l", f"k8s-file:{log_path}", "--socket-dir-path", str(dirs.sockets), "--full-attach",
        "--runtime-arg", "--root", "--runtime-arg", str(dirs.runc_root), "--log-level", "error",
    ]  # fmt: skip
    if cfg.tty:
        command.append("-t")
    if cfg.stdin_open:
        command.append("-i")
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
    """Write the bundle, start conmon (which runs `runc create`), return the container's pid.

    The container is left `created`: its namespaces and cgroup exist, init waits for `start`.
    The log defaults to `<bundle>/ctr.log`.
    """
    dirs = RuntimeDirs.of(paths)
    for directory in (dirs.runc_root, dirs.exits, dirs.sockets, dirs.persist_dir(cfg.id)):
        directory.mkdir(parents=True, exist_ok=True)
    dirs.exit_file(cfg.id).unlink(missing_ok=True)
    (dirs.persist_dir(cfg.id) / "exit").unlink(missing_ok=True)
    write_bundle(cfg, bundle_dir)
    log_path = log_path or bundle_dir / "ctr.log"
    ours, theirs = socket.socketpair()
    try:
        with (bundle_dir / "conmon.err").open("w") as errors:
            intermediate = subprocess.Popen(
                conmon_command(cfg, bundle_dir, dirs, log_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                pass_fds=(theirs.fileno(),),
                env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                     "_OCI_SYNCPIPE": str(theirs.fileno())},
                start_new_session=True,
                close_fds=True,
            )  # fmt: skip
        theirs.close()
        # The intermediate exits as soon as the daemon has forked; reaping it leaves no zombie.
        intermediate.wait(timeout=CREATE_TIMEOUT)
        message = _read_sync(ours, time.monotonic() + CREATE_TIMEOUT)
    except (RuntimeFailure, subprocess.TimeoutExpired, ValueError) as exc:
        _forget(cfg, paths)
        raise RuntimeFailure(f"container {cfg.name}: create failed: {exc}") from exc
    finally:
        ours.close()
        theirs.close()
    pid = int(message.get("data", -1))
    if pid <= 0:
        detail = str(message.get("message", "")).strip() or (bundle_dir / "conmon.err").read_text().strip()
        _forget(cfg, paths)
        raise RuntimeFailure(f"container {cfg.name}: create failed: {detail or 'no reason given'}")
    return pid


def _forget(cfg: ContainerConfig, paths: EnginePaths | None) -> None:
    """Undo a failed create: runc cleans its own record, but not the engine's cgroup parent."""
    delete(cfg.id, paths=paths)
    cgroups.remove(cfg.cgroup_path)
    cgroups.remove_if_empty(cfg.cgroup_parent)


def start(container_id: str, *, paths: EnginePaths | None = None) -> None:
    """Let a `created` container's init exec the user's process."""
    runc(RuntimeDirs.of(paths), "start", container_id)


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
    """runc's view, completed by conmon's exit file; NotFound if neither knows the container."""
    dirs = RuntimeDirs.of(paths)
    proc = runc(dirs, "state", container_id, check=False)
    record = _exit_record(dirs, container_id)
    oom = (dirs.persist_dir(container_id) / "oom").exists()
    if proc.returncode != 0:
        if "does not exist" not in proc.stderr:
            raise RuntimeFailure(f"runc state {container_id} failed: {proc.stderr.strip()}")
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
    deadline = None if timeout is None else time.monotonic() + timeout
    dirs = RuntimeDirs.of(paths)
    next_probe = 0.0
    while True:
        if _exit_record(dirs, container_id) is not None:
            return state(container_id, paths=paths)
        now = time.monotonic()
        # The exit file is a cheap stat; `runc state` is a process spawn. Asking runc on every
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
    runc(RuntimeDirs.of(paths), "kill", container_id, str(int(sig)) if isinstance(sig, int) else sig)


def stop(
    container_id: str, sig: int = signal.SIGTERM, grace: float = 10.0, *, paths: EnginePaths | None = None
) -> ContainerState:
    """`sig`, then SIGKILL once `grace` seconds pass; returns the final (stopped) state."""
    current = state(container_id, paths=paths)
    if current.status is Status.STOPPED:
        return wait(container_id, KILL_TIMEOUT, paths=paths)
    if current.status is Status.CREATED:
        # init is still blocked in runc's exec fifo: only SIGKILL is delivered.
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
    """Remove the container whatever its state: runc's record, conmon's files, its cgroups.

    A running container is killed first; we wait for conmon to write its exit file so it cannot
    reappear after we removed it. Deleting an unknown container is a no-op (cleanup is idempotent).
    """
    dirs = RuntimeDirs.of(paths)
    cgroup_path: str | None = None
    try:
        current = state(container_id, paths=paths)
    except NotFound:
        current = None
    if current is not None and current.bundle is not None:
        try:
            cgroup_path = json.loads((current.bundle / "config.json").read_text())["linux"]["cgroupsPath"]
        except (OSError, ValueError, KeyError):
            cgroup_path = None
        if current.status is not Status.STOPPED:
            runc(dirs, "kill", container_id, "KILL", check=False)
        # Also when already stopped: conmon may still be draining stdio before it writes the file.
        # If conmon is wedged, delete --force below still removes the container.
        with contextlib.suppress(RuntimeFailure):
            wait(container_id, KILL_TIMEOUT, paths=paths)
        runc(dirs, "delete", "--force", container_id)
    dirs.exit_file(container_id).unlink(missing_ok=True)
    persist = dirs.persist_dir(container_id)
    for leftover in (persist / "exit", persist / "oom"):
        leftover.unlink(missing_ok=True)
    if persist.is_dir():
        persist.rmdir()
    if cgroup_path:
        cgroups.remove(cgroup_path)
        cgroups.remove_if_empty(cgroup_path.rsplit("/", 1)[0] or "/")


def exec_argv(
    container_id: str,
    args: list[str] | tuple[str, ...],
    pid_file: Path,
    *,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: str | None = None,
    tty: bool = False,
    capabilities: tuple[str, ...] = (),
    paths: EnginePaths | None = None,
) -> list[str]:
    """The `runc exec` command line for `args` in the running container.

    The user is resolved against the container's rootfs, like the container's own; `capabilities`
    are added to the ones the container has (`docker exec --privileged` adds all of them). A
    container that is not running is an error, not exit code 1.
    """
    dirs = RuntimeDirs.of(paths)
    current = state(container_id, paths=paths)
    if current.status is not Status.RUNNING or current.bundle is None:
        raise RuntimeFailure(f"container {container_id} is not running ({current.status})")
    command = [RUNC, "--root", str(dirs.runc_root), "exec", "--pid-file", str(pid_file)]
    if tty:
        command.append("--tty")
    if cwd:
        command += ["--cwd", cwd]
    for key, value in (env or {}).items():
        command += ["--env", f"{key}={value}"]
    if user:
        resolved = resolve_user(rootfs_of(current.bundle), user)
        command += ["--user", f"{resolved.uid}:{resolved.gid}"]
        for gid in resolved.additional_gids:
            command += ["--additional-gids", str(gid)]
    for cap in capabilities:
        command += ["--cap", cap]
    return [*command, container_id, *args]


def exec_pid_file(container_id: str, kind: str = "exec", *, paths: EnginePaths | None = None) -> Path:
    """A fresh pid-file path for one `runc exec` (runc writes the process's host pid there)."""
    return RuntimeDirs.of(paths).runc_root / f"{kind}-{container_id}-{uuid.uuid4().hex[:8]}.pid"


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

    stdio defaults to ours (passthrough). See `exec_argv` for the user and a stopped container.
    """
    pid_file = exec_pid_file(container_id, paths=paths)
    command = exec_argv(container_id, args, pid_file, env=env, user=user, cwd=cwd, tty=tty, paths=paths)
    try:
        return subprocess.run(command, stdin=stdin, stdout=stdout, stderr=stderr, check=False).returncode
    finally:
        pid_file.unlink(missing_ok=True)


def kill_exec(pid_file: Path, proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a timed-out exec'd process inside the container, then reap `runc exec` (killing
    it too if it lingers): killing `runc exec` alone would leave the process running in there."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    try:
        proc.wait(KILL_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def top(container_id: str, *, paths: EnginePaths | None = None) -> TopResult:
    """`ps -ef` restricted to the container's processes (runc filters by its cgroup's pids)."""
    output = runc(RuntimeDirs.of(paths), "ps", container_id).stdout.splitlines()
    if not output:
        return TopResult(titles=(), processes=())
    titles = tuple(output[0].split())
    rows = tuple(tuple(line.split(None, len(titles) - 1)) for line in output[1:] if line.strip())
    return TopResult(titles=titles, processes=rows)


def list_ids(*, paths: EnginePaths | None = None) -> list[str]:
    """Every container id this engine root's runc knows about (for cleanup and re-adoption)."""
    dirs = RuntimeDirs.of(paths)
    if not dirs.runc_root.is_dir():
        return []
    output = runc(dirs, "list", "--quiet").stdout
    return [line for line in output.splitlines() if line.strip()]
