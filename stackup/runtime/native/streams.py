"""The client's end of an upgraded connection (`exec -it`, `attach`): a `ProcessStream`.

The handshake is a plain HTTP/1.1 request with `Connection: Upgrade` / `Upgrade: tcp`
written on a fresh connection of the engine's dialer (Unix socket, TLS or ssh); `101` makes the
socket the process's stdio (see
`stackup.runtime.wire.streams` for the protocol). Anything else is an error answer, raised as
the engine's error (`raise_for_answer`).

Output is read by one thread per stream into a queue, with one byte per queued chunk written to
a pipe whose read end is `fileno()`: so `select` on `fileno()` says exactly whether `read` would
block, even when one network read brought several frames (stdout and stderr) at once.
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stackup.errors import EngineUnavailable, RuntimeFailure
from stackup.runtime.base import OutputStream
from stackup.runtime.native.answers import raise_for_answer
from stackup.runtime.native.dialers import Dialer
from stackup.runtime.native.unixhttp import Answer, as_dialer, query
from stackup.runtime.wire.streams import UPGRADE_PROTOCOL, FrameDecoder, FrameError, StreamId

_HEAD_MAX = 64 << 10
_CHUNK = 65536
_STREAMS = {StreamId.STDIN: OutputStream.STDIN, StreamId.STDOUT: OutputStream.STDOUT,
            StreamId.STDERR: OutputStream.STDERR}  # fmt: skip


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and whatever came after the head."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(_CHUNK)
        if not chunk or len(buffer) > _HEAD_MAX:
            raise EngineUnavailable("engine closed the connection before answering the stream request")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split(" ", 2)[1])
    except (IndexError, ValueError):
        raise RuntimeFailure(f"engine answered the stream request with {status_line!r}") from None
    pairs = (line.partition(":") for line in lines)
    headers = {name.strip().lower(): value.strip() for name, _, value in pairs}
    return status, headers, rest


def open_upgraded(
    target: Path | Dialer, path: str, params: Mapping[str, Any] | None = None, *, timeout_s: float = 60.0
) -> tuple[socket.socket, bytes]:
    """`POST path` with the upgrade headers; the socket (blocking, no timeout) once answered 101,
    and the first bytes of the stream if they came with the answer."""
    dialer = as_dialer(target)
    try:
        sock = dialer.connect(timeout_s, duplex=True)
    except (FileNotFoundError, ConnectionError) as exc:
        detail = f"\n{dialer.diagnose()}".rstrip()
        raise EngineUnavailable(f"engine at {dialer} is not answering: {exc!r}{detail}") from exc
    try:
        request = (
            f"POST {path}{query(params)} HTTP/1.1\r\nHost: stackupd\r\nConnection: Upgrade\r\n"
            f"Upgrade: {UPGRADE_PROTOCOL}\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendall(request.encode())
        status, headers, rest = _read_head(sock)
        if status != 101:
            length = int(headers.get("content-length", "0") or 0)
            while len(rest) < length:
                chunk = sock.recv(_CHUNK)
                if not chunk:
                    break
                rest += chunk
            raise_for_answer(Answer(status, rest))
            raise RuntimeFailure(f"engine answered the stream request with HTTP {status}")
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock, rest


class UpgradedStream:
    """`ProcessStream` over an upgraded socket. `resize` and `exit_code` are the requests that
    go beside the stream (`/exec/{id}/resize` and `/exec/{id}/json`, or the container's)."""

    def __init__(
        self,
        sock: socket.socket,
        first: bytes,
        *,
        tty: bool,
        resize: Callable[[int, int], None],
        exit_code: Callable[[], int],
    ) -> None:
        self._sock = sock
        self._tty = tty
        self._resize = resize
        self._exit_code = exit_code
        self._queue: collections.deque[tuple[OutputStream, bytes]] = collections.deque()
        self._ready_r, self._ready_w = os.pipe()
        self._error: Exception | None = None
        self._ended = False
        self._reader = threading.Thread(target=self._pump, args=(first,), name="stackup-stream", daemon=True)
        self._reader.start()

    def _pump(self, first: bytes) -> None:
        decoder = FrameDecoder()
        data = first
        try:
            while True:
                if data:
                    if self._tty:
                        self._push(OutputStream.STDOUT, data)
                    else:
                        for stream, payload in decoder.feed(data):
                            self._push(_STREAMS[stream], payload)
                data = self._sock.recv(_CHUNK)
                if not data:
                    break
            if decoder.pending:
                raise FrameError(f"stream ended inside a frame ({decoder.pending} bytes left)")
        except (OSError, FrameError) as exc:
            if not self._ended:
                self._error = exc
        finally:
            os.close(self._ready_w)  # `read` sees the end once the queue is empty

    def _push(self, stream: OutputStream, data: bytes) -> None:
        self._queue.append((stream, data))
        os.write(self._ready_w, b"\0")

    def fileno(self) -> int:
        return self._ready_r

    def read(self) -> tuple[OutputStream, bytes] | None:
        if self._ended:
            return None
        if os.read(self._ready_r, 1):
            return self._queue.popleft()
        self._ended = True
        if self._error is not None:
            raise RuntimeFailure(f"stream from the engine broke: {self._error}")
        return None

    def write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise RuntimeFailure(f"cannot send input to the process: {exc}") from exc

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def resize(self, rows: int, cols: int) -> None:
        self._resize(rows, cols)

    def wait(self) -> int:
        """The exit code, once the engine has ended the stream (output not read is dropped)."""
        self._reader.join()
        return self._exit_code()

    def close(self) -> None:
        self._ended = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join()
        with contextlib.suppress(OSError):
            os.close(self._ready_r)

    def __enter__(self) -> UpgradedStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
