"""Attaching to a container's main process through its conmon.

conmon (started with `--full-attach`, so without the socket-dir symlink) listens on
`<bundle>/attach`, a SOCK_SEQPACKET Unix socket, for as long as the container lives (conmon's
`conn_sock.c` and `ctr_stdio.c`):

- every message conmon sends is one chunk of the container's output prefixed with one byte
  naming the pipe: 2 = stdout, 3 = stderr (conmon's `STDOUT_PIPE`/`STDERR_PIPE`; with a TTY
  everything is stdout). Output is only what is written while attached: there is no replay.
- what the client sends goes to the container's stdin (when conmon was started with `-i`), at
  most 32 KiB (`CONN_SOCK_BUF_SIZE`) per message.
- when the client stops sending (EOF), conmon closes the container's stdin unless it was
  started with `--leave-stdin-open`, which the engine passes for `stdin_open` containers:
  Compose's `stdin_open` is Docker's `OpenStdin` without `StdinOnce`, so one client detaching
  must not end the input of the next.
- conmon closes every attached socket when the container exits.

Terminal resizes go through a FIFO, `<bundle>/ctl`, as lines `1 <rows> <cols>\\n` (message
type 1 is `WIN_RESIZE_EVENT` in conmon's `config.h`).

The bundle path can be longer than a socket address allows (108 bytes), so the socket is
reached through `/proc/self/fd/<dirfd>/attach`, as conmon binds it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from stackup.errors import RuntimeFailure

ATTACH_SOCKET = "attach"
CONTROL_FIFO = "ctl"
MAX_INPUT = 32768
"""conmon reads at most this much per message (`CONN_SOCK_BUF_SIZE`)."""
STDOUT_PIPE = 2
STDERR_PIPE = 3
_RESIZE_EVENT = 1


def connect(bundle: Path) -> socket.socket:
    """A non-blocking connection to the container's attach socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        directory = os.open(bundle, os.O_PATH | os.O_CLOEXEC)
        try:
            sock.connect(f"/proc/self/fd/{directory}/{ATTACH_SOCKET}")
        finally:
            os.close(directory)
    except OSError as exc:
        sock.close()
        raise RuntimeFailure(f"cannot attach: conmon's attach socket in {bundle}: {exc}") from exc
    sock.setblocking(False)
    return sock


def resize(bundle: Path, rows: int, cols: int) -> None:
    """Ask conmon to resize the container's terminal."""
    try:
        fd = os.open(bundle / CONTROL_FIFO, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise RuntimeFailure(f"cannot resize: conmon's control fifo in {bundle}: {exc}") from exc
    with contextlib.closing(os.fdopen(fd, "wb", buffering=0)) as fifo:
        fifo.write(f"{_RESIZE_EVENT} {rows} {cols}\n".encode())
