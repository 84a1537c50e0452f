"""`stackupd --host tcp://ADDR:PORT`: the engine reachable from other machines, as Docker allows.

Mutual TLS: a client gets in only with a certificate signed by the engine's CA (`--tlscacert`),
and sees the engine's (`--tlscert`, `--tlskey`). Whoever gets in can run anything as root, so
a TCP listener without TLS is refused unless `--insecure-tcp` says so, as Docker's daemon
refuses one since v27; it then logs a warning at start and for every connection.

Each accepted connection is relayed, bytes both ways, to the engine's own Unix socket
(`wire/relay.py`): the API, NDJSON streams and upgraded exec/attach streams work unchanged, and
uvicorn, which would otherwise apply one TLS setting to every socket it serves (the Unix one
included), never sees TCP. One thread per connection: a remote client is a person or a CI job,
not thousands.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from stackup.runtime.wire.hosts import EngineHost, HostScheme
from stackup.runtime.wire.relay import relay

log = logging.getLogger("stackupd.remote")

HANDSHAKE_TIMEOUT_S = 10.0
"""A client that opens TCP and never finishes the handshake must not hold a thread for ever."""

INSECURE_WARNING = (
    "listening on %s WITHOUT TLS (--insecure-tcp): anyone who can reach this address can run any "
    "process as root on this machine"
)


class RemoteListener:
    """A TCP listener in front of the engine's Unix socket; TLS when `tls` is given."""

    def __init__(self, host: EngineHost, socket_path: Path, tls: ssl.SSLContext | None) -> None:
        if host.scheme is not HostScheme.TCP:
            raise ValueError(f"not a tcp:// host: {host}")
        self.host = host
        self.socket_path = socket_path
        self.tls = tls
        self._sock: socket.socket | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port the system chose when asked for port 0)."""
        assert self._sock is not None
        name = self._sock.getsockname()
        return str(name[0]), int(name[1])

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host.host, self.host.port or 0))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            raise SystemExit(f"stackupd: cannot listen on {self.host}: {exc.strerror or exc}") from None
        sock.settimeout(0.5)  # lets `close` end the accept loop
        self._sock = sock
        where = "tcp://{}:{}".format(*self.address)
        if self.tls is None:
            log.warning(INSECURE_WARNING, where)
        else:
            log.info("listening on %s (mutual TLS)", where)
        self._thread = threading.Thread(target=self._accept_loop, name="stackupd-tcp", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
        if self._sock is not None:
            self._sock.close()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closing.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                log.warning("accept on %s failed: %s", self.host, exc)
                continue
            threading.Thread(
                target=self._serve, args=(conn, peer), name="stackupd-tcp-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        with contextlib.closing(conn):
            client = self._handshake(conn, peer)
            if client is None:
                return
            with contextlib.closing(client):
                engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                with contextlib.closing(engine):
                    try:
                        engine.connect(str(self.socket_path))
                    except OSError as exc:
                        log.warning("cannot reach the engine socket for %s: %s", peer[0], exc)
                        return
                    relay(client, engine)

    def _handshake(self, conn: socket.socket, peer: tuple[str, int]) -> socket.socket | None:
        """The TLS connection once the client's certificate checked out; None if it did not."""
        if self.tls is None:
            log.warning("unauthenticated connection from %s:%d (--insecure-tcp)", *peer[:2])
            conn.settimeout(None)
            return conn
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            client = self.tls.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.warning("refused %s:%d: %s", peer[0], peer[1], getattr(exc, "reason", None) or exc)
            return None
        client.settimeout(None)
        log.info("client %s:%d connected as %s", peer[0], peer[1], _common_name(client.getpeercert()))
        return client


def _common_name(cert: dict[str, Any] | None) -> str:
    """The subject's CN of a peer certificate as `getpeercert()` returns it (for the log)."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return "?"
