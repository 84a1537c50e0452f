"""Pass: profiles (which services this run includes).

A service with no `profiles:` is always enabled; one with profiles is enabled when any of them
is active. Active profiles are `--profile` / `COMPOSE_PROFILES` plus the profiles of services
named on the command line (naming a service asks for it, as in `docker compose up debug`);
`*` activates every profile.

Disabled services are removed from the model so no later stage can start one by accident, but
their names and profiles are kept: the reference check can then say "db is disabled by profile
`dev`" instead of the baffling "unknown service db". An edge with `required: false` to a
disabled service is dropped here with a warning, which is what that flag exists for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from stackup.spec.models import Project, Service

ALL_PROFILES = "*"


@dataclass(frozen=True, slots=True)
class ProfileSelection:
    """The project restricted to enabled services, plus what was left out and why."""

    project: Project
    active: frozenset[str]
    disabled: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Disabled service -> its profiles (for messages)."""
    warnings: tuple[str, ...] = ()


def active_profiles(project: Project, profiles: Iterable[str], named: Iterable[str]) -> frozenset[str]:
    """Requested profiles plus the profiles of services named on the command line."""
    active = {p for p in profiles if p}
    for name in named:
        service = project.services.get(name)
        if service is not None:
            active.update(service.profiles)
    return frozenset(active)


def is_enabled(service: Service, active: frozenset[str]) -> bool:
    if not service.profiles or ALL_PROFILES in active:
        return True
    return any(p in active for p in service.profiles)


def select_profiles(project: Project, profiles: Iterable[str], named: Iterable[str] = ()) -> ProfileSelection:
    """Keep the enabled services; drop optional (`required: false`) edges to disabled ones."""
    active = active_profiles(project, profiles, named)
    enabled = {n: s for n, s in project.services.items() if is_enabled(s, active)}
    disabled = {n: tuple(s.profiles) for n, s in project.services.items() if n not in enabled}
    warnings: list[str] = []
    for name, service in list(enabled.items()):
        dropped = [dep for dep, edge in service.depends_on.items() if dep in disabled and not edge.required]
        if not dropped:
            continue
        for dep in dropped:
            warnings.append(f"service {name!r}: optional dependency {dep!r} is disabled by profile "
                            f"{_profiles_text(disabled[dep])}; starting without it")
        kept = {dep: edge for dep, edge in service.depends_on.items() if dep not in dropped}
        enabled[name] = service.model_copy(update={"depends_on": kept})
    return ProfileSelection(project=project.model_copy(update={"services": enabled}), active=active,
                            disabled=disabled, warnings=tuple(warnings))


def _profiles_text(profiles: tuple[str, ...]) -> str:
    return ", ".join(f"`{p}`" for p in profiles)


def describe_disabled(name: str, profiles: tuple[str, ...]) -> str:
    """`service 'db' is disabled (profile `dev`; enable it with --profile dev)`."""
    hint = profiles[0] if profiles else ""
    return (f"service {name!r} is disabled by profile {_profiles_text(profiles)}; "
            f"enable it with --profile {hint}")
