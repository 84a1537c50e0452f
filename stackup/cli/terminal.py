"""Connect the user's terminal to a process in a container (`exec -it`, `run -it`).

With a TTY the local terminal goes raw (keys reach the remote shell unprocessed) and window size
changes are forwarded; without one, stdout and stderr stay apart. The terminal is restored on
every exit path.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import termios
import tty as ttymod
from collections.abc import Iterator

from stackup.runtime.base import OutputStream, ProcessStream

_CHUNK = 65536


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    try:
        ttymod.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_stream(stream: ProcessStream, *, tty: bool) -> int:
    """Pump stdin -> process and process -> stdout/stderr until it ends; its exit code."""
    stdin_fd = sys.stdin.fileno()
    raw = _raw(stdin_fd) if tty and os.isatty(stdin_fd) else contextlib.nullcontext()

    def resize(*_: object) -> None:
        size = shutil.get_terminal_size()
        with contextlib.suppress(Exception):
            stream.resize(size.lines, size.columns)

    previous = signal.signal(signal.SIGWINCH, resize) if tty else None
    try:
        with raw:
            if tty:
                resize()
            _pump(stream, stdin_fd)
        return stream.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)
        stream.close()


def _pump(stream: ProcessStream, stdin_fd: int) -> None:
    out, err = sys.stdout.buffer, sys.stderr.buffer
    inputs = [stream.fileno(), stdin_fd]
    while True:
        try:
            ready, _, _ = select.select(inputs, [], [])
        except InterruptedError:
            continue
        if stdin_fd in ready:
            data = os.read(stdin_fd, _CHUNK)
            if data:
                stream.write(data)
            else:
                stream.close_stdin()
                inputs.remove(stdin_fd)
        if stream.fileno() in ready:
            chunk = stream.read()
            if chunk is None:
                return
            kind, data = chunk
            target = err if kind is OutputStream.STDERR else out
            target.write(data)
            target.flush()
