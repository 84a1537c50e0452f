"""Exec sessions: a process started in a running container for a live connection (`exec -it`).

A session is created first (`POST /containers/{ref}/execs`) and started by the upgraded
connection that carries its stdio (`api/upgrade.py`), as in Docker, so a client can learn the
id before anything runs and ask for the exit code afterwards.

The process is `<runtime> exec` in the foreground (no `--detach`), so the engine is its parent
and reaps it: the exit code needs no subreaper. With a TTY the engine opens a pseudo-terminal
pair and hands the slave side to the runtime, which proxies it to the container's own terminal;
the terminal's initial size goes into process.json (`consoleSize`). Resizing sets the size on
both terminals: on ours (runc copies it on SIGWINCH) and on the container's, reached through
the exec'd process's `/proc/<pid>/fd` (crun does not forward SIGWINCH), which makes the kernel
signal the process's foreground group. Without a TTY the process gets pipes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import secrets
import signal
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field

from stackup.errors import Conflict, NotFound
from stackup.runtime.engine.containers import conmon
from stackup.runtime.engine.containers.oci import all_capabilities
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.streams import ExecCreate, ExecInspect

KEEP_ENDED_S = 600.0
"""How long an ended session stays inspectable (its exit code) before it is forgotten."""
_DEFAULT_SIZE = (24, 80)


@dataclass
class ExecSession:
    """One session's state; mutated only under `ExecSessions`' lock."""

    id: str
    container_id: str
    request: ExecCreate
    started: bool = False
    running: bool = False
    pid: int | None = None
    exit_code: int | None = None
    ended_at: float | None = None

    def inspect(self) -> ExecInspect:
        return ExecInspect(
            id=self.id,
            container_id=self.container_id,
            args=self.request.args,
            tty=self.request.tty,
            stdin=self.request.stdin,
            running=self.running,
            started=self.started,
            pid=self.pid,
            exit_code=self.exit_code,
        )


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@dataclass
class RunningExec:
    """A started session's process and the engine's ends of its stdio (non-blocking fds).

    With a TTY, `terminal` is the pty master (output and input); otherwise `stdout`, `stderr`
    and, when the session takes input, `stdin` are pipe ends.
    """

    session: ExecSession
    command: conmon.ExecCommand
    proc: subprocess.Popen[bytes]
    terminal: int | None = None
    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None
    _reaped: threading.Event = field(default_factory=threading.Event)

    def process_pid(self) -> int | None:
        """The exec'd process's pid as the runtime recorded it (None until it did)."""
        if self.session.pid is None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                self.session.pid = int(self.command.pid_file.read_text().strip())
        return self.session.pid

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size on our pty and on the container's (see the module docstring)."""
        if self.terminal is None:
            raise Conflict(f"exec {self.session.id[:12]} has no TTY to resize")
        _set_size(self.terminal, rows, cols)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGWINCH)
        pid = self.process_pid()
        for number in (0, 1, 2) if pid is not None else ():
            try:
                fd = os.open(f"/proc/{pid}/fd/{number}", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                if os.isatty(fd):
                    _set_size(fd, rows, cols)
                    return
            finally:
                os.close(fd)

    def reap(self) -> int:
        """Block until the runtime (and so the process) has exited; its exit code."""
        try:
            code = self.proc.wait()
        finally:
            self.command.cleanup()
            self._reaped.set()
        return code

    def kill(self) -> None:
        """The client went away before the process ended: kill the process in the container."""
        if not self._reaped.is_set():
            self.process_pid()
            conmon.kill_exec(self.command.pid_file, self.proc)

    def close_fds(self) -> None:
        for fd in {self.terminal, self.stdin, self.stdout, self.stderr} - {None}:
            with contextlib.suppress(OSError):
                os.close(fd)  # type: ignore[arg-type]


def _nonblocking(fd: int) -> int:
    os.set_blocking(fd, False)
    return fd


class ExecSessions:
    """Every exec session of the engine, by id; thread-safe."""

    def __init__(self, paths: EnginePaths) -> None:
        self.paths = paths
        self._sessions: dict[str, ExecSession] = {}
        self._running: dict[str, RunningExec] = {}
        self._lock = threading.Lock()

    def create(self, container_id: str, request: ExecCreate) -> ExecSession:
        session = ExecSession(id=secrets.token_hex(32), container_id=container_id, request=request)
        with self._lock:
            self._prune()
            self._sessions[session.id] = session
        return session

    def get(self, exec_id: str) -> ExecSession:
        with self._lock:
            found = self._sessions.get(exec_id) or next(
                (s for i, s in self._sessions.items() if len(exec_id) >= 12 and i.startswith(exec_id)), None
            )
        if found is None:
            raise NotFound(f"no such exec session: {exec_id}")
        return found

    def _prune(self) -> None:
        horizon = time.monotonic() - KEEP_ENDED_S
        for key in [k for k, s in self._sessions.items() if s.ended_at is not None and s.ended_at < horizon]:
            del self._sessions[key]

    def forget_container(self, container_id: str) -> None:
        """A removed container's sessions go with it (as Docker's)."""
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.container_id == container_id]:
                del self._sessions[key]

    def start(self, exec_id: str, size: tuple[int, int] | None = None) -> RunningExec:
        """Spawn the session's process (once); the caller pumps its fds and calls `ended`."""
        session = self.get(exec_id)
        with self._lock:
            if session.started:
                raise Conflict(f"exec {exec_id[:12]} has already been started")
            session.started = session.running = True
        try:
            running = self._spawn(session, size or _DEFAULT_SIZE)
        except BaseException:
            self.ended(session, -1)
            raise
        with self._lock:
            self._running[session.id] = running
        return running

    def running(self, exec_id: str) -> RunningExec:
        """The live process of a started session (for a resize)."""
        session = self.get(exec_id)
        with self._lock:
            found = self._running.get(session.id)
        if found is None:
            raise Conflict(f"exec {exec_id[:12]} is not running")
        return found

    def ended(self, session: ExecSession, exit_code: int) -> None:
        with self._lock:
            self._running.pop(session.id, None)
            session.running = False
            session.exit_code = exit_code
            session.ended_at = time.monotonic()

    def _spawn(self, session: ExecSession, size: tuple[int, int]) -> RunningExec:
        request = session.request
        command = conmon.exec_command(
            session.container_id, request.args, kind="stream", env=request.env, user=request.user,
            cwd=request.cwd, tty=request.tty, capabilities=all_capabilities() if request.privileged else (),
            console_size=size if request.tty else None, paths=self.paths,
        )  # fmt: skip
        if request.tty:
            master, slave = pty.openpty()
            try:
                _set_size(master, *size)
                proc = command.popen(stdin=slave, stdout=slave, stderr=slave, long_lived=True)
            except BaseException:
                os.close(master)
                command.cleanup()
                raise
            finally:
                os.close(slave)
            return RunningExec(session, command, proc, terminal=_nonblocking(master))
        theirs: list[int] = []
        ours: list[int] = []
        try:
            stdin_r, stdin_w = os.pipe() if request.stdin else (subprocess.DEVNULL, None)
            if stdin_w is not None:
                theirs.append(stdin_r)
                ours.append(stdin_w)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            theirs += [out_w, err_w]
            ours += [out_r, err_r]
            proc = command.popen(stdin=stdin_r, stdout=out_w, stderr=err_w, long_lived=True)
        except BaseException:
            for fd in ours:
                os.close(fd)
            command.cleanup()
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        return RunningExec(
            session, command, proc,
            stdin=_nonblocking(stdin_w) if stdin_w is not None else None,
            stdout=_nonblocking(out_r), stderr=_nonblocking(err_r),
        )  # fmt: skip
