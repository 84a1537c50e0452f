"""The registry credentials a pull or push carries to the engine, resolved as the invoking user.

The engine runs as root, often with another HOME (and no access to the user's credential
helpers), so the client reads Docker's config (`$DOCKER_CONFIG/config.json`, else
`~/.docker/config.json`: `auths`, `credHelpers`, `credsStore`) for the registry host the
reference names and, for a Docker Hub image, for each registry mirror the engine will try
first (a mirror is its own registry, with its own login, as Docker treats it), and sends what it
found with the request. Nothing is sent for a registry the user has no login for; the secrets
never appear in logs or error messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stackup.registry.auth import load_credentials
from stackup.registry.config import DAEMON_JSON, configured_mirror_hosts, default_docker_config
from stackup.registry.reference import DEFAULT_DOMAIN, Reference
from stackup.runtime.wire.images import RegistryAuth


def credentials_for(ref: str, daemon_json: Sequence[Path] = DAEMON_JSON) -> tuple[RegistryAuth, ...]:
    """The caller's credentials for the registry of `ref` and its mirrors (empty: anonymous)."""
    host = Reference.parse(ref).domain
    hosts = (host, *(configured_mirror_hosts(daemon_json) if host == DEFAULT_DOMAIN else ()))
    found = []
    for name in dict.fromkeys(hosts):
        creds = load_credentials(default_docker_config(), name)
        if creds is not None:
            found.append(RegistryAuth(host=name, username=creds.username, password=creds.password,
                                      identity_token=creds.identity_token))
    return tuple(found)
