"""Start `stackupd` on demand, stop it, and tell whether it runs.

The CLI never needs a service manager: `ensure_engine` pings the socket and, when nothing
answers, spawns `python -m stackup.runtime.engine.server --detach` (same interpreter, so no PATH
dependency). The server forks once more and the first process exits, so the engine is adopted by
init and survives the CLI; its output goes to `$STACKUP_ROOT/engine.log`. A lock file serialises
concurrent starters, so two CLIs racing never start two engines on one root.

`STACKUP_HOST` names another engine (`wire/hosts.py`): a remote one (`tcp://`, `ssh://`) or a
socket other than the root's is never started from here, only dialed; starting it is its
host's business, and a local engine started by mistake would quietly take the remote's work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stackup.errors import EngineUnavailable, RuntimeFailure, UsageError
from stackup.runtime.native.client import EngineClient
from stackup.runtime.native.dialers import dialer_for
from stackup.runtime.wire.hosts import HOST_ENV, EngineHost, parse_host
from stackup.runtime.wire.models import EngineInfo
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.runfiles import log_path, pid_path

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_POLL_S = 0.05


class EngineStatus(BaseModel):
    """`stackup engine status`: whether it answers, and what it says about itself if it does."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    running: bool
    socket: str
    pid: int | None = None
    info: EngineInfo | None = None


def read_pid(paths: EnginePaths) -> int | None:
    """The engine's pid if its pid file names a live process, else None."""
    try:
        pid = int(pid_path(paths).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _answers(client: EngineClient) -> bool:
    try:
        client.ping()
    except EngineUnavailable:
        return False
    return True


def _log_tail(paths: EnginePaths, lines: int = 20) -> str:
    try:
        last = log_path(paths).read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return "(no engine log)"
    if last and last[-1].startswith("stackupd: "):  # the engine refused with a reason: only that
        return last[-1]
    return "\n".join(last)


@contextlib.contextmanager
def _start_lock(paths: EnginePaths) -> Iterator[None]:
    paths.run.mkdir(parents=True, exist_ok=True)
    with open(paths.run / "start.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def engine_host(paths: EnginePaths | None = None) -> EngineHost | None:
    """The engine `STACKUP_HOST` names, None when it is the local root's (or unset)."""
    value = os.environ.get(HOST_ENV)
    if not value:
        return None
    host = parse_host(value)
    if not host.remote and host.path == (paths or EnginePaths.from_env()).socket:
        return None
    return host


def connect_host(host: EngineHost) -> EngineClient:
    """A client of the engine at `host`, which must already answer (it is never started here)."""
    client = EngineClient(dialer_for(host))
    try:
        client.ping()
    except EngineUnavailable as exc:
        client.close()
        raise EngineUnavailable(
            f"no engine answers at {host} ({HOST_ENV}); start it there (`stackupd --host ...` for "
            f"tcp://, `stackup engine start` on the ssh host) or unset {HOST_ENV} for the local one.\n{exc}"
        ) from None
    return client


def ensure_engine(paths: EnginePaths | None = None, *, timeout_s: float = START_TIMEOUT_S) -> EngineClient:
    """A client of a running engine, starting one if the socket does not answer (never when
    `STACKUP_HOST` names another engine: that one is only dialed)."""
    host = engine_host(paths) if paths is None else None
    if host is not None:
        return connect_host(host)
    paths = paths or EnginePaths.from_env()
    client = EngineClient(paths.socket)
    if _answers(client):
        return client
    try:
        with _start_lock(paths):
            if not _answers(client):  # another starter may have won the race while we waited
                started = time.time()
                _spawn(paths, timeout_s)
                _wait_until(lambda: _answers(client), timeout_s, paths, started)
    except BaseException:
        client.close()
        raise
    return client


def _spawn(paths: EnginePaths, timeout_s: float) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STACKUP_ROOT": str(paths.root)}
    argv = [sys.executable, "-m", "stackup.runtime.engine.server", "--root", str(paths.root), "--detach"]
    with open(log_path(paths), "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    try:
        code = proc.wait(timeout_s)  # the detaching parent exits as soon as it has forked
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise EngineUnavailable(f"engine did not detach in {timeout_s:.0f}s:\n{_log_tail(paths)}") from None
    if code != 0:
        raise EngineUnavailable(f"engine failed to start (exit {code}):\n{_log_tail(paths)}")


def _refusal(paths: EnginePaths, since: float) -> str | None:
    """The reason a just-started engine gave for exiting (`stackupd: ...`, its last log line)."""
    try:
        if log_path(paths).stat().st_mtime < since - 1:  # coarse timestamps on some filesystems
            return None
    except FileNotFoundError:
        return None
    last = _log_tail(paths, lines=1)
    return last if last.startswith("stackupd: ") else None


def _wait_until(ready: Callable[[], bool], timeout_s: float, paths: EnginePaths, started: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if (reason := _refusal(paths, started)) is not None:
            raise EngineUnavailable(f"engine failed to start: {reason}")
        if time.monotonic() > deadline:
            raise EngineUnavailable(
                f"engine did not answer on {paths.socket} within {timeout_s:.0f}s:\n{_log_tail(paths)}"
            )
        time.sleep(_POLL_S)


def stop_engine(paths: EnginePaths | None = None, *, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the engine of `paths` (containers keep running). False if none was running.

    Asks politely over the API first; if the engine does not exit in time it gets SIGTERM, then
    SIGKILL, because a wedged engine must never block `stackup engine stop`.
    """
    if paths is None and (host := engine_host()) is not None:
        raise UsageError(f"{HOST_ENV}={host}: stop that engine on its own host (this stops local ones)")
    paths = paths or EnginePaths.from_env()
    pid = read_pid(paths)
    with EngineClient(paths.socket) as client:
        answered = _answers(client)
        if answered:
            with contextlib.suppress(EngineUnavailable, RuntimeFailure):
                client.shutdown()
    if pid is None:
        return answered
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s / 2
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        if not _alive(pid):
            return True
    raise RuntimeFailure(f"engine pid {pid} did not exit")


def engine_status(paths: EnginePaths | None = None) -> EngineStatus:
    if paths is None and (host := engine_host()) is not None:
        with EngineClient(dialer_for(host)) as remote:
            try:
                info = remote.info()
            except EngineUnavailable:
                return EngineStatus(running=False, socket=str(host))
        return EngineStatus(running=True, socket=str(host), pid=info.pid, info=info)
    paths = paths or EnginePaths.from_env()
    with EngineClient(paths.socket) as client:
        try:
            client.ping()
            info = client.info()
        except EngineUnavailable:
            return EngineStatus(running=False, socket=str(paths.socket), pid=read_pid(paths))
    return EngineStatus(running=True, socket=str(paths.socket), pid=info.pid, info=info)
