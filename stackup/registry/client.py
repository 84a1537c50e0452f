"""The distribution API over HTTP: routing to a working endpoint, authentication, error mapping.

`RegistryClient` knows nothing of images on disk: it sends `/v2/` requests for a `Reference` and
hands back responses; `pull.py` and `push.py` compose them. On the first request to a registry it
pings `/v2/` on each endpoint (mirrors, HTTPS, then HTTP if insecure) and keeps the first that
answers, together with its authentication challenge, so later requests carry credentials (or a
cached bearer token for the scope) without a 401 round trip.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

from stackup.registry.auth import (
    Challenge,
    Credentials,
    Scheme,
    TokenCache,
    load_credentials,
    parse_challenges,
    token_from_response,
)
from stackup.registry.config import RegistryConfig
from stackup.registry.errors import (
    AccessDenied,
    AuthenticationRequired,
    ManifestUnknown,
    RegistryError,
    RegistryUnreachable,
    describe_error,
)
from stackup.registry.reference import Reference
from stackup.registry.transport import Endpoint, Transport

if TYPE_CHECKING:
    from stackup.registry.blobfetch import BlobFetcher

Body = bytes | Callable[[], Iterable[bytes]] | None
"""A request body; a callable is called again if the request must be resent after a 401."""

_NOT_FOUND_CODES = {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", "BLOB_UPLOAD_UNKNOWN"}


def scope(ref: Reference, *actions: str) -> str:
    return f"repository:{ref.path}:{','.join(actions or ('pull',))}"


class RegistryClient:
    """Thread-safe: one client serves every parallel blob transfer of a process."""

    def __init__(self, config: RegistryConfig | None = None, *,
                 credentials: Mapping[str, Credentials] | None = None) -> None:
        self.config = config or RegistryConfig()
        self.transport = Transport(self.config)
        self._tokens = TokenCache()
        self._given = dict(credentials or {})
        self._creds: dict[str, Credentials | None] = {}
        self._mains: dict[str, Endpoint] = {}
        self._pinged: dict[Endpoint, str | None] = {}
        self._challenges: dict[str, Challenge | None] = {}
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._fetcher: BlobFetcher | None = None

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()
        self.transport.close()

    def blob_fetcher(self) -> BlobFetcher:
        """The http.client-based downloader for blob bodies (see blobfetch.py for why)."""
        from stackup.registry.blobfetch import BlobFetcher

        with self._lock:
            if self._fetcher is None:
                self._fetcher = BlobFetcher(self)
            return self._fetcher

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routing ----------------------------------------------------------------------------

    def endpoint(self, host: str) -> Endpoint:
        """The registry's own endpoint (never a mirror): the first scheme whose `/v2/` answers.

        Pinged once per process; the answer's challenge is kept so requests authenticate up front.
        """
        with self._lock:
            found = self._mains.get(host)
            if found is not None:
                return found
            host_lock = self._host_locks.setdefault(host, threading.Lock())
        with host_lock:
            with self._lock:
                if host in self._mains:
                    return self._mains[host]
            failures = []
            for candidate in self.transport.endpoints(host, push=True):
                failure = self._ping(candidate)
                if failure is None:
                    with self._lock:
                        self._mains[host] = candidate
                    return candidate
                failures.append(failure)
        raise RegistryUnreachable(
            f"cannot reach registry {host} ({'; '.join(failures)}); check the address and that it "
            f"runs; for a private CA put it in {self.config.certs_dir}/{host}/ca.crt, or list {host} "
            "as an insecure registry")

    def _ping(self, endpoint: Endpoint) -> str | None:
        """None if `endpoint` serves the API (any answer but 404/5xx), else why not; cached."""
        with self._lock:
            if endpoint in self._pinged:
                return self._pinged[endpoint]
        failure: str | None = None
        try:
            response = self.transport.client(endpoint).get(endpoint.base + "/v2/")
        except (httpx.TransportError, OSError) as exc:
            failure = f"{endpoint.base}: {describe_error(exc)}"
        else:
            if response.status_code >= 500 or response.status_code == 404:
                failure = f"{endpoint.base}: HTTP {response.status_code} on /v2/"
            else:
                challenge = _pick(parse_challenges(response.headers.get("www-authenticate", "")))
                with self._lock:
                    self._challenges.setdefault(_auth_key(endpoint), challenge)
        with self._lock:
            self._pinged[endpoint] = failure
        return failure

    def candidates(self, host: str, *, push: bool) -> Iterator[Endpoint]:
        """Mirrors that answer (docker.io pulls only), then the registry itself, pinged lazily so a
        mirror that serves everything means the registry is never contacted."""
        for candidate in self.transport.endpoints(host, push=push):
            if candidate.mirror and self._ping(candidate) is None:
                yield candidate
        yield self.endpoint(host)

    # -- requests ---------------------------------------------------------------------------

    def request(self, method: str, ref: Reference, suffix: str, *, scopes: tuple[str, ...],
                headers: Mapping[str, str] | None = None, body: Body = None,
                params: Mapping[str, str] | None = None, stream: bool = False, push: bool = False,
                url: str | None = None) -> httpx.Response:
        """Send `/v2/<repo>/<suffix>` (or an absolute `url` from a Location header) with auth.

        Pulls try mirrors first and move on when a mirror fails or lacks the content.
        """
        for endpoint in self.candidates(ref.domain, push=push or url is not None):
            target = url or f"{endpoint.base}/v2/{ref.path}/{suffix}"
            try:
                response = self.send(endpoint, method, target, scopes=scopes, headers=headers, body=body,
                                     params=params, stream=stream, image=ref.familiar)
            except RegistryUnreachable:
                if not endpoint.mirror:
                    raise
                continue
            if endpoint.mirror and response.status_code >= 400:
                response.close()
                continue
            return response
        raise AssertionError("unreachable: candidates() always ends with the registry itself")

    def base_url(self, ref: Reference) -> str:
        return self.endpoint(ref.domain).base

    def send(self, endpoint: Endpoint, method: str, url: str, *, scopes: tuple[str, ...],
             headers: Mapping[str, str] | None = None, body: Body = None,
             params: Mapping[str, str] | None = None, stream: bool = False,
             image: str = "") -> httpx.Response:
        client = self.transport.client(endpoint)
        response: httpx.Response | None = None
        for attempt in range(2):
            sent = dict(headers or {})
            authorization = self.authorization(endpoint, scopes, image, renew=attempt > 0)
            if authorization:
                sent["Authorization"] = authorization
            content = body() if callable(body) else body
            request = client.build_request(method, url, headers=sent, content=content, params=params)
            try:
                response = client.send(request, stream=stream, follow_redirects=method in ("GET", "HEAD"))
            except httpx.TransportError as exc:
                raise RegistryUnreachable(f"{method} {request.url.host}: {describe_error(exc)}; check that "
                                          "the registry is up and reachable", image=image) from exc
            if response.status_code != 401 or attempt:
                return response
            if not self.note_challenge(endpoint, response.headers.get("www-authenticate", "")):
                return response
            response.close()
        assert response is not None
        return response

    # -- authentication ---------------------------------------------------------------------

    def credentials(self, host: str) -> Credentials | None:
        """Given credentials, else Docker's config.json (helpers run once per host and process)."""
        if host in self._given:
            return self._given[host]
        with self._lock:
            if host in self._creds:
                return self._creds[host]
        found = load_credentials(self.config.docker_config, host)
        with self._lock:
            self._creds[host] = found
        return found

    def note_challenge(self, endpoint: Endpoint, header: str) -> bool:
        """Remember the challenge of a 401; False if it offers nothing we can answer."""
        challenge = _pick(parse_challenges(header))
        if challenge is None:
            return False
        with self._lock:
            self._challenges[_auth_key(endpoint)] = challenge
        return True

    def authorization(self, endpoint: Endpoint, scopes: tuple[str, ...], image: str, *,
                      renew: bool) -> str | None:
        """The Authorization header for `scopes` on `endpoint` (None: send none); `renew` after a
        401 forgets the cached token, or raises if there are no credentials to try."""
        with self._lock:
            challenge = self._challenges.get(_auth_key(endpoint))
        if challenge is None:
            return None
        # a mirror is its own registry: its credentials are filed under its host name
        host = httpx.URL(endpoint.base).netloc.decode() if endpoint.mirror else endpoint.host
        creds = self.credentials(host)
        if challenge.scheme == Scheme.BASIC:
            if creds is None:
                if renew:
                    raise AuthenticationRequired(
                        f"registry {host} requires a login; run `stackup login {host}`", image=image)
                return None
            return creds.basic_header()
        realm = challenge.get("realm") or ""
        service = challenge.get("service") or ""
        key = (realm, service, *sorted(scopes), creds.username if creds else "")
        if renew:
            self._tokens.drop(key)
        else:
            cached = self._tokens.get(key)
            if cached:
                return "Bearer " + cached
        token, lifetime = self._fetch_token(host, realm, service, scopes, creds=creds, image=image)
        self._tokens.put(key, token, lifetime)
        return "Bearer " + token

    def _fetch_token(self, host: str, realm: str, service: str, scopes: tuple[str, ...], *,
                     creds: Credentials | None, image: str) -> tuple[str, float]:
        if not realm.startswith(("https://", "http://")):
            raise AuthenticationRequired(f"registry {host} sent a bearer challenge without a usable realm "
                                         f"({realm!r})", image=image)
        client = self.transport.client_for(realm, verify=not self.transport.is_insecure(
            httpx.URL(realm).netloc.decode()))
        try:
            if creds is not None and creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "service": service, "scope": " ".join(scopes), "client_id": "stackup"}
                response = client.post(realm, data=form)
            else:
                params: list[tuple[str, str | int | float | bool | None]] = [
                    ("service", service), *(("scope", s) for s in scopes)]
                if creds is not None and creds.username:
                    params.append(("account", creds.username))
                auth = (creds.username, creds.password) if creds is not None and creds.username else None
                response = client.get(realm, params=params, auth=auth)
        except httpx.TransportError as exc:
            raise RegistryUnreachable(f"cannot reach the token service {realm} of {host}: "
                                      f"{describe_error(exc)}", image=image) from exc
        if response.status_code in (401, 403):
            who = (f"the credentials of {creds.username or 'the identity token'}" if creds
                   else "anonymous access")
            raise AuthenticationRequired(f"registry {host} refused {who}; run `stackup login {host}`",
                                         image=image)
        if response.status_code != 200:
            raise RegistryError(f"token service {realm} of {host} answered HTTP {response.status_code}",
                                image=image)
        return token_from_response(response.content, realm)

    # -- errors -----------------------------------------------------------------------------

    def error(self, response: httpx.Response, ref: Reference, what: str) -> RegistryError:
        """The clear error for a failed response; `what` is e.g. "manifest 7" or "blob sha256:...".

        Reads the body of a streamed response (error bodies are small).
        """
        try:
            response.read()
            errors = json.loads(response.content).get("errors") or []
        except (ValueError, AttributeError, httpx.HTTPError):
            errors = []
        codes = {str(e.get("code", "")) for e in errors if isinstance(e, dict)}
        detail = ("; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
                  or response.reason_phrase)
        status, host, image = response.status_code, ref.domain, ref.familiar
        if status == 401 or "UNAUTHORIZED" in codes:
            return AuthenticationRequired(f"{what}: registry {host} wants credentials ({detail}); run "
                                          f"`stackup login {host}`", image=image)
        if status == 403 or "DENIED" in codes:
            return AccessDenied(f"{what}: access to {ref.repository} denied ({detail}); check that this "
                                "account may use the repository", image=image)
        if status == 404 or codes & _NOT_FOUND_CODES:
            if "NAME_UNKNOWN" in codes:
                return ManifestUnknown(f"repository {ref.repository} does not exist in {host}; check the "
                                       "name (or log in, if it is private)", image=image)
            return ManifestUnknown(f"{what} not found in {ref.repository}; check the tag or digest",
                                   image=image)
        if status == 429 or "TOOMANYREQUESTS" in codes:
            return RegistryError(f"{what}: registry {host} is rate limiting us ({detail}); wait and retry, "
                                 "log in, or configure a mirror", image=image)
        return RegistryError(f"{what}: registry {host} answered HTTP {status} ({detail}); retry later",
                             image=image)

    # -- small operations -------------------------------------------------------------------

    def exists(self, ref: Reference, suffix: str, *, scopes: tuple[str, ...], push: bool = False,
               headers: Mapping[str, str] | None = None) -> httpx.Response | None:
        """HEAD `suffix`: the response if it exists, None on 404, a clear error otherwise."""
        response = self.request("HEAD", ref, suffix, scopes=scopes, push=push, headers=headers)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise self.error(response, ref, describe_path(suffix))
        return response

    @contextmanager
    def stream(self, method: str, ref: Reference, suffix: str, *, scopes: tuple[str, ...],
               headers: Mapping[str, str] | None = None) -> Iterator[httpx.Response]:
        """A streamed GET that raises the clear error on failure and always closes."""
        response = self.request(method, ref, suffix, scopes=scopes, headers=headers, stream=True)
        try:
            if response.status_code >= 400:
                raise self.error(response, ref, describe_path(suffix))
            yield response
        finally:
            response.close()


def describe_path(suffix: str) -> str:
    """`manifests/7` -> `tag 7`, `blobs/sha256:..` -> `blob sha256:..`: how errors name things."""
    kind, _, name = suffix.partition("/")
    if kind == "manifests":
        return f"manifest {name}" if ":" in name else f"tag {name}"
    if kind == "blobs":
        return f"blob {name}"
    return suffix


def _auth_key(endpoint: Endpoint) -> str:
    return endpoint.base if endpoint.mirror else endpoint.host


def _pick(challenges: list[Challenge]) -> Challenge | None:
    """Prefer Bearer (scoped, short-lived) over Basic when a registry offers both."""
    by_scheme = {c.scheme: c for c in challenges}
    return by_scheme.get(Scheme.BEARER) or by_scheme.get(Scheme.BASIC)


