"""HTTP/1.1 to `stackupd`, with the standard library's `http.client`, over a `Dialer`'s
connections (the Unix socket, TLS or ssh: `dialers.py`).

Why not httpx here: every CLI command talks to the engine, and importing httpx + httpcore (+ h11,
and trio when it happens to be installed, which httpcore probes for) cost ~0.1 s of each command,
more than most answers take. What the client needs is small: JSON requests, NDJSON streams, a
keep-alive connection per thread, timeouts. `http.client` does all of it; this module adds the
dialer, the per-thread pool and one retry when a kept-alive connection turns out closed.

Errors leave as `stackup.errors` exceptions: nothing answering -> `EngineUnavailable`, a timeout
-> `RuntimeFailure`.
"""

from __future__ import annotations

import contextlib
import http.client
import sys
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stackup.errors import EngineUnavailable, RuntimeFailure
from stackup.runtime.native.dialers import Dialer, UnixDialer

_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
"""What a kept-alive connection the engine closed while idle raises on reuse: safe to retry,
since the engine never read the request."""


def _stale(exc: BaseException) -> bool:
    """`_STALE`, or its TLS spelling (the engine's end of a `tcp://` connection closed: EOF in
    the TLS layer). `ssl` is looked up, not imported: it is loaded only when TLS is in use."""
    if isinstance(exc, _STALE):
        return True
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError)


class _Connection(http.client.HTTPConnection):
    def __init__(self, dialer: Dialer, timeout_s: float | None) -> None:
        super().__init__("stackupd", timeout=timeout_s)
        self._dialer = dialer

    def connect(self) -> None:
        self.sock = self._dialer.connect(self.timeout)


def as_dialer(target: Path | Dialer) -> Dialer:
    """A socket path is the local engine's; anything else already knows how to connect."""
    return UnixDialer(target) if isinstance(target, Path) else target


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: status and body."""

    status: int
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


def query(params: Mapping[str, Any] | None) -> str:
    """`?a=1&label=x&label=y`: lists repeat the key, booleans are `true`/`false`, None is left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None:
                continue
            pairs.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


class UnixHTTP:
    """Requests to one engine; thread-safe (one kept-alive connection per thread)."""

    def __init__(self, target: Path | Dialer, *, timeout_s: float | None) -> None:
        self.dialer = as_dialer(target)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[_Connection] = []

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        timeout_s: float | bool | None = True,
    ) -> Answer:
        """Send one request and read the whole answer. `timeout_s=True`: the client default."""
        with self._response(method, path, params, body, timeout_s) as response:
            return Answer(response.status, response.read())

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        timeout_s: float | bool | None = True,
        body: bytes | None = None,
    ) -> Iterator[http.client.HTTPResponse]:
        """The open response, read as it arrives (`readline()` for NDJSON). The connection is
        not reused: a stream is often left before its end (`logs -f` interrupted)."""
        conn = _Connection(self.dialer, self._timeout(timeout_s))
        headers = {"content-type": "application/json"} if body is not None else {}
        try:
            with _mapped(self.dialer):
                conn.request(method, path + query(params), body=body, headers=headers)
                response = conn.getresponse()
            yield response
        finally:
            conn.close()

    def upload(
        self,
        method: str,
        path: str,
        body: IO[bytes],
        *,
        params: Mapping[str, Any] | None = None,
        content_type: str = "application/octet-stream",
        timeout_s: float | bool | None = True,
    ) -> Answer:
        """Send a request whose body is read from `body` as it goes (chunked), on a connection of
        its own: a half-sent body cannot be retried on a fresh connection as `request` does."""
        conn = _Connection(self.dialer, self._timeout(timeout_s))
        try:
            with _mapped(self.dialer):
                conn.request(method, path + query(params), body=body, headers={"content-type": content_type},
                             encode_chunked=True)  # fmt: skip
                response = conn.getresponse()
                return Answer(response.status, response.read())
        finally:
            conn.close()

    def _timeout(self, timeout_s: float | bool | None) -> float | None:
        return self.timeout_s if timeout_s is True else (None if timeout_s is False else timeout_s)

    @contextlib.contextmanager
    def _response(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout_s: float | bool | None,
    ) -> Iterator[http.client.HTTPResponse]:
        target = path + query(params)
        headers = {"content-type": "application/json"} if body is not None else {}
        timeout = self._timeout(timeout_s)
        with _mapped(self.dialer):
            for attempt in (1, 2):
                conn, reused = self._connection()
                try:
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                    conn.request(method, target, body=body, headers=headers)
                    response = conn.getresponse()
                except OSError as exc:
                    self._drop(conn)
                    if reused and attempt == 1 and _stale(exc):
                        continue
                    raise
                except BaseException:
                    self._drop(conn)
                    raise
                try:
                    yield response
                    response.read()  # drain, so the connection can carry the next request
                except BaseException:
                    self._drop(conn)
                    raise
                if response.will_close:
                    self._drop(conn)
                return

    def _connection(self) -> tuple[_Connection, bool]:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        conn = _Connection(self.dialer, self.timeout_s)
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn, False

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)


@contextlib.contextmanager
def _mapped(dialer: Dialer) -> Iterator[None]:
    """Transport failures as `stackup.errors` exceptions, naming the engine (and, for ssh or
    TLS, what the transport said)."""
    try:
        yield
    except TimeoutError as exc:
        raise RuntimeFailure(f"engine at {dialer} did not answer in time") from exc
    except (OSError, http.client.HTTPException) as exc:
        said = dialer.diagnose()
        detail = f"\n{said}" if said else ""
        raise EngineUnavailable(f"engine at {dialer} is not answering: {exc!r}{detail}") from exc
