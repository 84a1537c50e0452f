"""The registry credentials a pull or push carries to the engine, resolved as the invoking user.

The engine runs as root, often with another HOME (and no access to the user's credential
helpers), so the client reads Docker's config (`$DOCKER_CONFIG/config.json`, else
`~/.docker/config.json`: `auths`, `credHelpers`, `credsStore`) for the one registry host the
reference names, and sends what it found with the request. Nothing is sent for a registry the
user has no login for; the secrets never appear in logs or error messages.
"""

from __future__ import annotations

from stackup.registry.auth import load_credentials
from stackup.registry.config import default_docker_config
from stackup.registry.reference import Reference
from stackup.runtime.wire.images import RegistryAuth


def credentials_for(ref: str) -> tuple[RegistryAuth, ...]:
    """The caller's credentials for the registry of `ref` (empty: anonymous)."""
    host = Reference.parse(ref).domain
    found = load_credentials(default_docker_config(), host)
    if found is None:
        return ()
    return (RegistryAuth(host=host, username=found.username, password=found.password,
                         identity_token=found.identity_token),)
