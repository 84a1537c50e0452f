"""Blob downloads over the standard library's http.client, with the client's endpoints and auth.

Why not httpx here: blobs are nearly all of a pull's bytes. On this 2-core machine, a cold `pull`
of a 5-layer, 51 MiB image from docker-registry on loopback took 0.205 s (median, 8 runs) with this
module against 0.363 s with httpx streaming (`iter_raw()`), runs alternating; one 100 MiB blob read
and hashed: 0.33-0.48 s against 0.45-0.60 s (1.3 s with `iter_raw(chunk_size=...)`, which
re-chunks). Manifests, tokens and uploads are few and small and stay on httpx.

Everything else is the client's: the same endpoints (mirrors first), Authorization headers and
challenges, TLS contexts (certs.d), and clear errors. Redirects (blob storage) are followed up to
five hops; credentials are never sent to another origin. Idle connections are kept per origin.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx

from stackup.registry.errors import RegistryUnreachable, describe_error
from stackup.registry.reference import Reference
from stackup.registry.transport import Endpoint

if TYPE_CHECKING:
    from stackup.registry.client import RegistryClient

_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_HOPS = 5
_Key = tuple[str, str, bool]


def _origin(url: str) -> tuple[str, str]:
    split = urllib.parse.urlsplit(url)
    return split.scheme, split.netloc


class BlobFetcher:
    """GETs blob bodies; thread-safe (one connection per request, idle ones pooled)."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def open(self, ref: Reference, digest: str, *,
             scopes: tuple[str, ...]) -> Iterator[http.client.HTTPResponse]:
        """A response positioned at the blob's first byte; raises the client's clear errors."""
        found: tuple[http.client.HTTPResponse, http.client.HTTPConnection, _Key] | None = None
        for endpoint in self.client.candidates(ref.domain, push=False):
            try:
                response, conn, key = self._get(endpoint, f"{endpoint.base}/v2/{ref.path}/blobs/{digest}",
                                                scopes, ref.familiar)
            except RegistryUnreachable:
                if endpoint.mirror:
                    continue
                raise
            if response.status >= 400:
                body = response.read()
                conn.close()
                if endpoint.mirror:
                    continue
                failed = httpx.Response(response.status, headers=response.getheaders(), content=body)
                raise self.client.error(failed, ref, f"blob {digest}")
            found = (response, conn, key)
            break
        assert found is not None, "candidates() always ends with the registry itself"
        response, conn, key = found
        try:
            yield response
        except BaseException:
            conn.close()
            raise
        self._release(key, conn, response)

    def _get(self, endpoint: Endpoint, url: str, scopes: tuple[str, ...],
             image: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, _Key]:
        for attempt in range(2):
            headers = {"User-Agent": self.client.config.user_agent, "Accept-Encoding": "identity"}
            authorization = self.client.authorization(endpoint, scopes, image, renew=attempt > 0)
            if authorization:
                headers["Authorization"] = authorization
            response, conn, key = self._follow(endpoint, url, headers, image)
            if response.status == 401 and attempt == 0:
                challenge = response.getheader("www-authenticate", "")
                response.read()
                self._release(key, conn, response)
                if self.client.note_challenge(endpoint, challenge):
                    continue
                response, conn, key = self._follow(endpoint, url, headers, image)
            return response, conn, key
        raise AssertionError("unreachable")

    def _follow(self, endpoint: Endpoint, url: str, headers: dict[str, str],
                image: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, _Key]:
        home = _origin(endpoint.base)
        for hop in range(_MAX_HOPS + 1):
            split = urllib.parse.urlsplit(url)
            same = (split.scheme, split.netloc) == home
            verify = endpoint.verify if same else not self.client.transport.is_insecure(split.netloc)
            key = (split.scheme, split.netloc, verify)
            target = (split.path or "/") + (f"?{split.query}" if split.query else "")
            response, conn = self._request(key, target, headers, image)
            if response.status not in _REDIRECTS or hop == _MAX_HOPS:
                return response, conn, key
            location = response.getheader("location", "")
            response.read()
            self._release(key, conn, response)
            url = urllib.parse.urljoin(url, location)
            if _origin(url) != home:
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
        raise AssertionError("unreachable")

    def _request(self, key: _Key, target: str, headers: dict[str, str],
                 image: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        """One GET; a pooled connection the server closed meanwhile is replaced once."""
        for fresh in (False, True):
            conn = self._connection(key, fresh=fresh)
            try:
                conn.request("GET", target, headers=headers)
                return conn.getresponse(), conn
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                reused = getattr(conn, "_stackup_reused", False)
                if reused and not fresh:
                    continue
                path = target.split("?", maxsplit=1)[0]
                raise RegistryUnreachable(f"GET {key[1]}{path}: {describe_error(exc)}; check that the "
                                          "registry is up and reachable", image=image) from exc
        raise AssertionError("unreachable")

    def _connection(self, key: _Key, *, fresh: bool) -> http.client.HTTPConnection:
        if not fresh:
            with self._lock:
                idle = self._idle.get(key)
                if idle:
                    conn = idle.pop()
                    conn._stackup_reused = True  # type: ignore[attr-defined]
                    return conn
        scheme, netloc, verify = key
        timeout = self.client.config.read_timeout
        if scheme == "https":
            context = self.client.transport.ssl_context(netloc, verify=verify)
            return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)
        return http.client.HTTPConnection(netloc, timeout=timeout)

    def _release(self, key: _Key, conn: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:
        """Keep the connection for the next blob if its response was read to the end."""
        if response.isclosed() and not response.will_close:
            with self._lock:
                self._idle.setdefault(key, []).append(conn)
        else:
            conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
