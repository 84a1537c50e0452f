"""`ProcessStream` over the raw socket the daemon hands over for `exec` and `attach`.

Without a TTY the daemon multiplexes stdout and stderr on one connection, each chunk behind an
8-byte header (stream id, three zero bytes, big-endian payload length); with a TTY the bytes come
raw and are all stdout. Frames are read exactly (header, then payload) so nothing is left buffered
in user space and `select` on `fileno` stays truthful. Closing stdin is a half-close of the socket,
which the daemon turns into EOF on the process's stdin.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any

from stackup.runtime.base import OutputStream

_STREAMS = {0: OutputStream.STDIN, 1: OutputStream.STDOUT, 2: OutputStream.STDERR}
_HEADER = struct.Struct(">BxxxL")
_CHUNK = 65536


def raw_socket(sock: Any) -> socket.socket:
    """The `socket.socket` under whatever the SDK returned (a `SocketIO` for unix and tcp)."""
    inner = getattr(sock, "_sock", sock)
    if not isinstance(inner, socket.socket):
        raise TypeError(f"expected a socket from the docker SDK, got {type(inner).__name__}")
    return inner


class SocketStream:
    """A live process: `read` demultiplexes (or passes raw TTY bytes), `wait` asks the daemon."""

    def __init__(
        self,
        sock: Any,
        *,
        tty: bool,
        waiter: Callable[[], int],
        resizer: Callable[[int, int], None],
    ) -> None:
        self._keep = sock  # the SDK object owns the response; dropping it could close the socket
        self._sock = raw_socket(sock)
        self._tty = tty
        self._waiter = waiter
        self._resizer = resizer
        self._eof = False

    def fileno(self) -> int:
        return self._sock.fileno()

    def _exact(self, size: int) -> bytes | None:
        parts: list[bytes] = []
        left = size
        while left:
            chunk = self._sock.recv(min(left, _CHUNK))
            if not chunk:
                return None
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def read(self) -> tuple[OutputStream, bytes] | None:
        if self._eof:
            return None
        try:
            if self._tty:
                data = self._sock.recv(_CHUNK)
                if data:
                    return OutputStream.STDOUT, data
            else:
                while (header := self._exact(_HEADER.size)) is not None:
                    kind, size = _HEADER.unpack(header)
                    payload = self._exact(size) if size else b""
                    if payload is None:
                        break
                    if payload:
                        return _STREAMS.get(kind, OutputStream.STDOUT), payload
        except OSError:
            pass  # a reset connection is the end of the stream
        self._eof = True
        return None

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):  # already closed by the other side
            self._sock.shutdown(socket.SHUT_WR)

    def resize(self, rows: int, cols: int) -> None:
        self._resizer(rows, cols)

    def wait(self) -> int:
        return self._waiter()

    def close(self) -> None:
        self._eof = True
        try:
            self._sock.close()
        finally:
            close = getattr(self._keep, "close", None)
            if close is not None:
                close()
