"""`login` / `logout`: check credentials against a registry, then keep them where Docker does.

The CLI's `stackup login HOST` and `stackup logout HOST` call these. Credentials are verified
before they are saved (a bearer registry must issue a token for them, a basic one must accept
them on `/v2/`), so a typo never lands in config.json.
"""

from __future__ import annotations

from stackup.registry.auth import Credentials, erase_credentials, store_credentials
from stackup.registry.client import RegistryClient
from stackup.registry.config import RegistryConfig
from stackup.registry.errors import AuthenticationRequired, InvalidReference
from stackup.registry.reference import DEFAULT_DOMAIN, LEGACY_DOMAIN, Reference

_HUB_ALIASES = {"", DEFAULT_DOMAIN, LEGACY_DOMAIN, "registry-1.docker.io", "index.docker.io/v1"}


def registry_host(server: str) -> str:
    """`https://index.docker.io/v1/` or nothing -> docker.io; `https://h:5000/` -> h:5000."""
    host = server.strip().split("://", 1)[-1].rstrip("/")
    if host in _HUB_ALIASES:
        return DEFAULT_DOMAIN
    if "/" in host:
        host = host.split("/", 1)[0]
    if not host or " " in host:
        raise InvalidReference(f"invalid registry {server!r}: expected HOST[:PORT]")
    return host


def login(server: str, username: str, password: str, *, config: RegistryConfig | None = None) -> str:
    """Verify and save the credentials; returns the registry host they were saved for."""
    config = config or RegistryConfig()
    host = registry_host(server)
    if not username or not password:
        raise AuthenticationRequired(f"login to {host} needs a username and a password")
    credentials = Credentials(username, password)
    with RegistryClient(config, credentials={host: credentials}) as client:
        endpoint = client.endpoint(host)
        response = client.send(endpoint, "GET", endpoint.base + "/v2/", scopes=(), image=host)
        if response.status_code == 401:
            raise AuthenticationRequired(f"login to {host} failed: the registry refused user {username!r}; "
                                         "check the username and password")
        if response.status_code >= 400:
            raise client.error(response, _probe_ref(host), "login")
    store_credentials(config.docker_config, host, credentials)
    return host


def logout(server: str, *, config: RegistryConfig | None = None) -> bool:
    """Forget the credentials of `server`; False when none were saved."""
    config = config or RegistryConfig()
    return erase_credentials(config.docker_config, registry_host(server))


def _probe_ref(host: str) -> Reference:

    return Reference(host, "v2")
