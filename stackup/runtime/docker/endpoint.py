"""Where the Docker daemon is, as the docker CLI decides it, and one client for all threads.

Order: `DOCKER_HOST`; else the current Docker context (`DOCKER_CONTEXT`, else `currentContext`
in `$DOCKER_CONFIG/config.json`) and its `docker` endpoint in `contexts/meta/<sha256(name)>/meta.json`;
else `unix:///var/run/docker.sock`. Podman's Docker-compatible socket is just another endpoint.

The API version is pinned (`DOCKER_API_VERSION`, else `API_VERSION`) so no request is spent on
version negotiation, and the connection pool is sized for the planner's parallelism: one
`APIClient` is shared by every thread, each request takes a pooled connection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

DEFAULT_ENDPOINT: Final = "unix:///var/run/docker.sock"
API_VERSION: Final = "1.41"
"""Docker 20.10's API (Debian 12's docker.io) and what Podman 4's compat API serves; newer
daemons accept it too. Fields newer than 1.41 (healthcheck `start_interval`) are not sent."""
PARALLEL: Final = 64
"""Operations in flight over a daemon (docker-compose's own default limit): each is a request the
daemon works on while this process only waits, so more than the native engine's 16 pays off
(a 50-service `down` ran 16 stops at once against docker-compose's ~33 and lost)."""
POOL_SIZE: Final = PARALLEL + 16
"""Connections kept per pool: the operations in flight plus health gates and inspects."""
TIMEOUT_S: Final = 120.0
"""Per-request HTTP timeout; `stop` adds the grace period on top."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A daemon address and where the choice came from (for error messages)."""

    url: str
    source: str
    tls_verify: bool = False
    cert_path: str | None = None

    def __str__(self) -> str:
        return f"{self.url} (from {self.source})"


def resolve(environ: Mapping[str, str], home: Path | None = None) -> Endpoint:
    """The endpoint the docker CLI would use with this environment."""
    tls = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert = environ.get("DOCKER_CERT_PATH") or None
    host = environ.get("DOCKER_HOST")
    if host:
        return Endpoint(host, "DOCKER_HOST", tls, cert)
    config_dir = Path(environ.get("DOCKER_CONFIG") or (home or Path.home()) / ".docker")
    name = environ.get("DOCKER_CONTEXT") or _current_context(config_dir)
    if name and name != "default":
        meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
        url = _context_host(meta)
        if url:
            return Endpoint(url, f"docker context {name}", tls, cert)
    return Endpoint(DEFAULT_ENDPOINT, "default", tls, cert)


def _current_context(config_dir: Path) -> str | None:
    try:
        data = json.loads((config_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = data.get("currentContext") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _context_host(meta: Path) -> str | None:
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    host = (((data or {}).get("Endpoints") or {}).get("docker") or {}).get("Host")
    return host if isinstance(host, str) and host else None


def api_client(endpoint: Endpoint, environ: Mapping[str, str]) -> Any:
    """A thread-safe `docker.APIClient` for `endpoint`; makes no request."""
    import docker  # type: ignore[import-untyped]

    tls: Any = False
    if endpoint.tls_verify or endpoint.cert_path:
        from docker.tls import TLSConfig  # type: ignore[import-untyped]

        cert_dir = Path(endpoint.cert_path or Path.home() / ".docker")
        tls = TLSConfig(
            client_cert=(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem")),
            ca_cert=str(cert_dir / "ca.pem"),
            verify=endpoint.tls_verify,
        )
    return docker.APIClient(
        base_url=endpoint.url,
        version=environ.get("DOCKER_API_VERSION") or API_VERSION,
        timeout=TIMEOUT_S,
        tls=tls,
        max_pool_size=POOL_SIZE,
    )
