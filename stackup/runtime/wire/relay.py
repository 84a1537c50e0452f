"""Copy bytes both ways between two sockets, TLS or not, keeping half-closes.

Used where a connection changes carrier: the engine's TLS listener relays each client to its own
Unix socket (`engine/remote.py`), `stackup system dial-stdio` relays ssh's stdio to it, and the
client relays an exec/attach stream through a socket pair so that its reader thread and its
writer never touch one `SSLSocket` at once (OpenSSL objects are not safe to share between
threads).

Half-close matters: end of a non-TTY exec's stdin is the client shutting its write side, and the
process's output must still flow afterwards. On a plain socket that is `shutdown(SHUT_WR)`; on
TLS it is a `close_notify` alert while reading goes on, which TLS 1.3 allows and which `unwrap()`
on a non-blocking socket sends without waiting for the peer's. One thread runs the whole relay
with non-blocking sockets and `select`, so a TLS object is only ever used by that thread.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from dataclasses import dataclass, field

_CHUNK = 65536
_BUFFER_MAX = 4 * _CHUNK
"""Stop reading a side while this much of its data waits for the other: back-pressure."""
_TICK_S = 1.0
"""select timeout: TLS may want to read when writing (and the reverse); a tick retries both."""

_WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


@dataclass(slots=True)
class _Side:
    sock: socket.socket
    eof: bool = False
    """Nothing more will be read from this side."""
    out: bytearray = field(default_factory=bytearray)
    """Read from the other side, not yet written to this one."""
    shut: bool = False
    """Our write side is closed (after the other side's end of data was passed on)."""


def half_close(sock: socket.socket) -> None:
    """End our writing and keep reading: `close_notify` on TLS, `SHUT_WR` otherwise."""
    if isinstance(sock, ssl.SSLSocket):
        blocking = sock.getblocking()
        sock.setblocking(False)
        try:
            sock.unwrap()
        except (*_WOULD_BLOCK, OSError, ValueError):  # sent; the peer's alert is not awaited
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.setblocking(blocking)
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def _pump(src: _Side, dst: _Side) -> bool:
    """Move what can move from `src` to `dst` without blocking; True if anything happened."""
    moved = False
    if not src.eof and len(dst.out) < _BUFFER_MAX:
        try:
            data = src.sock.recv(_CHUNK)
        except _WOULD_BLOCK:
            data = None
        except OSError:  # reset, or a TLS error: this side is done
            data = b""
        if data is not None:
            moved = True
            if data:
                dst.out += data
            else:
                src.eof = True
    if dst.out:
        try:
            sent = dst.sock.send(dst.out)
        except _WOULD_BLOCK:
            sent = 0
        except OSError:  # the other side is gone: nothing more can be delivered to it
            dst.out.clear()
            dst.shut = True
            src.eof = True
            return True
        if sent:
            del dst.out[:sent]
            moved = True
    if src.eof and not dst.out and not dst.shut:
        half_close(dst.sock)
        dst.shut = True
        moved = True
    return moved


def relay(first: socket.socket, second: socket.socket) -> None:
    """Relay until both sides have ended their data (or one broke). Closes neither socket."""
    a, b = _Side(first), _Side(second)
    for side in (a, b):
        side.sock.setblocking(False)
    while not (a.eof and b.eof and a.shut and b.shut):
        moved = _pump(a, b)
        moved = _pump(b, a) or moved
        if moved:
            continue
        readable = [s.sock for s in (a, b) if not s.eof]
        writable = [s.sock for s in (a, b) if s.out]
        if not readable and not writable:
            return
        select.select(readable, writable, [], _TICK_S)
