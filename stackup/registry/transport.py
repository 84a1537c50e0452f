"""Which URLs reach a registry, and the pooled HTTP clients that talk to them.

Docker's rules: HTTPS first, verified against the system CAs plus every `*.crt` under
`certs.d/HOST[:PORT]/` (and a `*.cert`/`*.key` pair there is the client certificate). A registry is
*insecure* when its `host[:port]` is listed, or when one of its addresses lies in a listed CIDR
(loopback always, unless turned off): then HTTPS is tried without verification and plain HTTP
after it. Mirrors come first, and only for docker.io; pushes never go to mirrors.

One httpx client per (scheme, host, verification) keeps connections alive across the config,
manifest and layer requests of a pull; HTTP/1.1 with several connections in parallel is what
blob downloads want (one stream per connection, no HTTP/2 head-of-line blocking on 2 cores).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx

from stackup.registry.config import LOOPBACK_CIDRS, RegistryConfig, mirror_host
from stackup.registry.errors import RegistryError
from stackup.registry.reference import DEFAULT_DOMAIN

DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A base URL that serves the registry API of `host`; `mirror` ones are pull-only."""

    host: str
    base: str
    verify: bool
    mirror: bool = False

    @property
    def tls(self) -> bool:
        return self.base.startswith("https://")


def api_host(host: str) -> str:
    """docker.io's API lives on registry-1.docker.io; every other registry on its own name."""
    return DOCKER_HUB_API if host == DEFAULT_DOMAIN else host


def _split_port(host: str) -> str:
    """The hostname or IP of `host[:port]` / `[v6]:port`, without brackets or port."""
    if host.startswith("["):
        return host[1:host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@functools.lru_cache(maxsize=256)
def _addresses(name: str) -> tuple[str, ...]:
    try:
        return (str(ipaddress.ip_address(name)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return ()
    return tuple(sorted({str(info[4][0]) for info in infos}))


@functools.lru_cache(maxsize=64)
def _context(directory: str, verify: bool, stamp: tuple[tuple[str, int], ...]) -> ssl.SSLContext:
    if verify:
        context = ssl.create_default_context()
    else:  # no verification: skip loading the system CAs altogether
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    for name, _ in stamp:
        path = Path(directory) / name
        if path.suffix == ".crt" and verify:
            context.load_verify_locations(cafile=str(path))
        elif path.suffix == ".cert":
            key = path.with_suffix(".key")
            if not key.exists():
                raise RegistryError(f"client certificate {path} has no matching {key.name}; "
                                    "add the key or remove the .cert")
            context.load_cert_chain(str(path), str(key))
    return context


class Transport:
    """Endpoints and HTTP clients for every registry this process talks to; thread-safe."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self._clients: dict[tuple[str, bool, str], httpx.Client] = {}
        self._lock = threading.Lock()
        names, cidrs = [], []
        for entry in (*config.insecure_registries, *(LOOPBACK_CIDRS if config.loopback_insecure else ())):
            try:
                cidrs.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.append(entry.lower())
        self._insecure_names = frozenset(names)
        self._insecure_cidrs = tuple(cidrs)

    def is_insecure(self, host: str) -> bool:
        """Docker's `isSecureIndex`, negated: listed by name, or an address in a listed CIDR."""
        if host.lower() in self._insecure_names:
            return True
        if host in (DEFAULT_DOMAIN, DOCKER_HUB_API):
            return False  # the official index is always secure (and never worth a DNS lookup)
        return any(ipaddress.ip_address(address) in cidr
                   for address in _addresses(_split_port(host)) for cidr in self._insecure_cidrs
                   if ipaddress.ip_address(address).version == cidr.version)

    def endpoints(self, host: str, *, push: bool = False) -> list[Endpoint]:
        """In the order to try them."""
        out: list[Endpoint] = []
        if host == DEFAULT_DOMAIN and not push:
            for mirror in self.config.mirrors:
                base = mirror.rstrip("/")
                if "://" not in base:
                    base = "https://" + base
                name = mirror_host(base)
                out.append(Endpoint(host, base, verify=not self.is_insecure(name), mirror=True))
        target = api_host(host)
        insecure = self.is_insecure(target)
        out.append(Endpoint(host, f"https://{target}", verify=not insecure))
        if insecure:
            out.append(Endpoint(host, f"http://{target}", verify=False))
        return out

    def client(self, endpoint: Endpoint) -> httpx.Client:
        return self.client_for(endpoint.base, verify=endpoint.verify)

    def client_for(self, url: str, *, verify: bool = True) -> httpx.Client:
        """The pooled client for URLs on `url`'s origin (also used for token realms)."""
        origin = httpx.URL(url)
        netloc = origin.netloc.decode()
        key = (origin.scheme, verify, netloc)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._make_client(netloc, verify and origin.scheme == "https")
                self._clients[key] = found
            return found

    def _make_client(self, netloc: str, verify: bool) -> httpx.Client:
        limit = max(self.config.max_concurrent_downloads, self.config.max_concurrent_uploads) + 2
        return httpx.Client(
            verify=self.ssl_context(netloc, verify=verify),
            http1=True, http2=False, trust_env=False, follow_redirects=False,
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            timeout=httpx.Timeout(self.config.read_timeout, connect=self.config.connect_timeout,
                                  pool=None),
            headers={"User-Agent": self.config.user_agent})

    def ssl_context(self, netloc: str, *, verify: bool = True) -> ssl.SSLContext:
        """System CAs, plus certs.d/NETLOC/*.crt; a *.cert + *.key pair there is our client cert.

        Built once per (directory contents, verification) in this process: loading the system CAs
        costs ~70 ms, which a pull of a small image should not pay every time.
        """
        directory = self.config.certs_dir / netloc
        try:
            stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in directory.iterdir()))
        except OSError:
            stamp = ()
        return _context(str(directory), verify, stamp)

    def certs_dir_of(self, host: str) -> Path:
        return self.config.certs_dir / host

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
