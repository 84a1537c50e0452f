"""`stackup system dial-stdio`: this machine's engine socket on stdin and stdout.

The far end of `STACKUP_HOST=ssh://...`: the client's ssh runs this on the engine's host, and
the bytes of one connection flow through ssh's channel, so the engine sees an ordinary local
client (Docker's `docker system dial-stdio` plays the same part). `STACKUP_HOST` is ignored
here, so a host configured to reach yet another engine cannot loop back through ssh; the engine
of `STACKUP_ROOT` is started if it does not run, as any local command would.

End of stdin (the client closed or half-closed) becomes `shutdown(SHUT_WR)` on the socket; the
relay ends when the engine closes its side.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading

from stackup.runtime.wire.paths import EnginePaths

_CHUNK = 65536


def _connect(paths: EnginePaths) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(paths.socket))
    except OSError:
        sock.close()
        from stackup.runtime.native.launcher import ensure_engine

        ensure_engine(paths).close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(paths.socket))
    return sock


def _stdin_to(sock: socket.socket, stdin: int) -> None:
    with contextlib.suppress(OSError):
        while data := os.read(stdin, _CHUNK):
            sock.sendall(data)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def dial_stdio(paths: EnginePaths | None = None, *, stdin: int = 0, stdout: int = 1) -> int:
    """Relay `stdin`/`stdout` to the engine's socket until the engine ends the connection."""
    sock = _connect(paths or EnginePaths.from_env())
    with contextlib.closing(sock):
        threading.Thread(target=_stdin_to, args=(sock, stdin), name="dial-stdio-in", daemon=True).start()
        with contextlib.suppress(OSError):
            while data := sock.recv(_CHUNK):
                view = memoryview(data)
                while view:
                    view = view[os.write(stdout, view) :]
    return 0
