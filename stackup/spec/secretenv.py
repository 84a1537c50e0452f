"""`environment` values marked secret, and masking them in anything printed.

Compose has no marking, so stackup reads one from an extension on the service,
`x-stackup-secret: [API_TOKEN, DB_PASSWORD]` (Compose ignores `x-*` keys, so the file stays
portable), and treats the value of every top-level secret read from the environment
(`secrets: {token: {environment: TOKEN}}`) as secret too. The extension is part of the
service's canonical config, which containers carry in their `io.stackup.config` label, so
commands that work by project name only (`logs`, `inspect`) find the marking on the containers.

Masking is by value: the printed text has every secret value replaced by `MASK`, wherever it
shows up (a plan's `old -> new`, a label holding the config, a line a container logs). Values
shorter than `MIN_LENGTH` are masked only where they are printed by key (`config`): masking
every `1` in a log would make it unreadable and tell an onlooker the value anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: `cli.masking` imports this for every command
    from stackup.spec.models import Project
    from stackup.spec.models_service import Service

EXTENSION = "x-stackup-secret"
MASK = "********"
MIN_LENGTH = 4


def secret_names(service: Service) -> tuple[str, ...]:
    """The variables the service marks secret (a string names one)."""
    return _names(service.extensions.get(EXTENSION))


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def secret_values(project: Project, environ: Mapping[str, str]) -> frozenset[str]:
    """Every secret value of the project: marked variables of every service, and the values of
    secrets read from the environment."""
    values = {
        value
        for service in project.services.values()
        for name in secret_names(service)
        if (value := service.environment.get(name))
    }
    values.update(
        environ[secret.environment]
        for secret in project.secrets.values()
        if secret.environment and environ.get(secret.environment)
    )
    return frozenset(values)


def values_from_config(config: Mapping[str, Any], env: Mapping[str, str]) -> frozenset[str]:
    """Secret values of one container: the variables its canonical service config (the one its
    config label holds) marks, looked up in that config's `environment` and in `env`, the
    container's full environment (`env_file` values are only there)."""
    names = set(_names(config.get(EXTENSION)))
    declared = config.get("environment")
    values = {str(v) for k, v in (declared.items() if isinstance(declared, dict) else ()) if k in names and v}
    values.update(str(v) for k, v in env.items() if k in names and v)
    return frozenset(values)


def mask_canonical(data: dict[str, Any]) -> dict[str, Any]:
    """`stackup config`'s model with every marked variable's value masked, whatever its length."""
    services = data.get("services")
    if not isinstance(services, dict):
        return data
    masked = dict(services)
    for name, service in services.items():
        if not isinstance(service, dict) or not isinstance(service.get("environment"), dict):
            continue
        marked = set(_names(service.get(EXTENSION)))
        if marked:
            env = {k: MASK if k in marked and v is not None else v for k, v in service["environment"].items()}
            masked[name] = {**service, "environment": env}
    return {**data, "services": masked}


class Masker:
    """Replaces secret values in text, longest first (so a value containing another goes whole)."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = tuple(sorted({v for v in values if len(v) >= MIN_LENGTH}, key=len, reverse=True))
        self._bytes = tuple(v.encode() for v in self.values)

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def data(self, data: bytes) -> bytes:
        for value in self._bytes:
            if value in data:
                data = data.replace(value, MASK.encode())
        return data
