"""How the registry client reaches registries: insecure hosts, mirrors, certificates, credentials.

Defaults are Docker's: loopback (127.0.0.0/8, ::1) may be plain HTTP, CA and client certificates
live under /etc/docker/certs.d/HOST[:PORT]/, credentials in $DOCKER_CONFIG/config.json (else
~/.docker/config.json), three blobs download at once and five upload at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stackup.registry.errors import RegistryError

DEFAULT_CERTS_DIR = Path("/etc/docker/certs.d")
LOOPBACK_CIDRS = ("127.0.0.0/8", "::1/128")
DAEMON_JSON = (Path("/etc/stackup/daemon.json"), Path("/etc/docker/daemon.json"))
"""Where the engine's registry settings live: the first that exists decides."""


def default_docker_config() -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as the Docker CLI resolves it."""
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Everything the client needs to know about the network around it; frozen so it can be shared.

    `insecure_registries` holds `host[:port]` names or CIDRs whose registries may be reached over
    plain HTTP (or HTTPS without verification), as Docker's `insecure-registries`. `mirrors` are
    base URLs tried before Docker Hub for `docker.io` pulls only.
    """

    insecure_registries: tuple[str, ...] = ()
    loopback_insecure: bool = True
    mirrors: tuple[str, ...] = ()
    certs_dir: Path = DEFAULT_CERTS_DIR
    docker_config: Path = field(default_factory=default_docker_config)
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    upload_chunk_size: int = 32 << 20
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 3
    user_agent: str = "stackup"

    @classmethod
    def from_daemon_json(cls, path: Path = Path("/etc/docker/daemon.json"),
                         **overrides: object) -> RegistryConfig:
        """Take `insecure-registries` and `registry-mirrors` from a Docker daemon.json, if present."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read {path}: {exc}; fix or remove the file") from exc
        values: dict[str, object] = {
            "insecure_registries": tuple(data.get("insecure-registries") or ()),
            "mirrors": tuple(data.get("registry-mirrors") or ()),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def daemon_json(candidates: Sequence[Path] = DAEMON_JSON) -> Path | None:
    """The daemon.json that decides the engine's registry settings, if any."""
    return next((path for path in candidates if path.is_file()), None)


def mirror_host(mirror: str) -> str:
    """`host[:port]` of a mirror URL: the name its credentials are filed under, as a registry's."""
    base = mirror.rstrip("/")
    return base.split("://", 1)[1].split("/", 1)[0] if "://" in base else base.split("/", 1)[0]


def configured_mirror_hosts(candidates: Sequence[Path] = DAEMON_JSON) -> tuple[str, ...]:
    """The mirror hosts the engine will try for Docker Hub pulls; () when unreadable (the engine
    then reports the file's problem itself)."""
    path = daemon_json(candidates)
    if path is None:
        return ()
    try:
        return tuple(mirror_host(m) for m in RegistryConfig.from_daemon_json(path).mirrors)
    except RegistryError:
        return ()
