"""What the user asked `up` for, beyond the stack file: the knobs `reconcile` obeys.

One frozen value instead of a long keyword list (Compose 1.x's `Project.up` took 19), with the
recreate policy as an enum so "force" and "never" cannot both be set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from stackup.errors import UsageError


class Recreate(StrEnum):
    """When an existing container is replaced."""

    DIVERGED = "diverged"  # only when its config or image changed (the default)
    FORCE = "force"  # always (`--force-recreate`)
    NEVER = "never"  # never; changes are reported but kept (`--no-recreate`)


@dataclass(frozen=True, slots=True)
class ReconcileOptions:
    """Inputs to `reconcile` that are not the project or the observed state.

    `services` selects what to bring up (empty = all); their dependencies come too unless
    `no_deps`. `recreate_deps` applies to those pulled-in dependencies (`--always-recreate-deps`
    sets it to FORCE). `disabled_services` are services switched off by profiles: their containers
    are left alone rather than treated as orphans (Compose #8432: disabled is not orphan).
    `referenced_files` holds the bytes of files services reference (env_file), for the hash.
    """

    services: tuple[str, ...] = ()
    no_deps: bool = False
    recreate: Recreate = Recreate.DIVERGED
    recreate_deps: Recreate = Recreate.DIVERGED
    remove_orphans: bool = False
    build: bool = False
    no_build: bool = False
    scale: Mapping[str, int] = field(default_factory=dict)
    disabled_services: frozenset[str] = frozenset()
    referenced_files: Mapping[str, bytes] = field(default_factory=dict)
    working_dir: str = ""
    config_files: tuple[str, ...] = ()
    pull: str | None = None
    """`up --pull always|missing|never`: overrides every service's `pull_policy`."""
    refreshed: frozenset[str] = frozenset()
    """References this `up` pulled already (its refresh phase): no second pull is planned."""
    now: datetime | None = None
    """The clock, for periodic pull policies (`daily`): passed in, so reconcile stays pure."""


def recreate_policies(
    *, force_recreate: bool = False, no_recreate: bool = False, always_recreate_deps: bool = False
) -> tuple[Recreate, Recreate]:
    """Compose's three CLI flags -> (`recreate`, `recreate_deps`), rejecting what Compose rejects."""
    if force_recreate and no_recreate:
        raise UsageError("--force-recreate and --no-recreate cannot be combined")
    if always_recreate_deps and no_recreate:
        raise UsageError("--always-recreate-deps and --no-recreate cannot be combined")
    recreate = Recreate.FORCE if force_recreate else Recreate.NEVER if no_recreate else Recreate.DIVERGED
    return recreate, (Recreate.FORCE if always_recreate_deps else recreate)
