"""When an image must come from its registry: `pull_policy`, `up --pull`, and staleness.

Compose semantics: `always` pulls on every `up`; `missing` (alias `if_not_present`, the default)
pulls only an absent image; `never` requires it locally; `build` builds instead; `daily`,
`weekly`, `every_<duration>` (and `refresh` with `pull_refresh_after`) pull an absent image, or
one whose last pull is older than the period (an image that was never pulled, e.g. imported or
built, counts as fresh: there is nothing to refresh it from). `up --pull POLICY` overrides the
stack file's policy for every service. Pure: the clock is `ReconcileOptions.now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from stackup.errors import PlanError
from stackup.registry.errors import InvalidReference
from stackup.registry.reference import Reference
from stackup.units import parse_duration

DAY = timedelta(days=1)


class PullPolicy(StrEnum):
    ALWAYS = "always"
    MISSING = "missing"
    NEVER = "never"
    BUILD = "build"
    PERIODIC = "periodic"  # daily, weekly, every_<duration>, refresh


def parse_policy(value: str | None, refresh_after: str | None = None) -> tuple[PullPolicy, timedelta | None]:
    """(kind, period): `daily` -> (PERIODIC, 1 day); `if_not_present` -> (MISSING, None)."""
    text = value or "missing"
    if text == "if_not_present":
        return PullPolicy.MISSING, None
    if text in ("always", "missing", "never", "build"):
        return PullPolicy(text), None
    if text == "daily":
        return PullPolicy.PERIODIC, DAY
    if text == "weekly":
        return PullPolicy.PERIODIC, 7 * DAY
    try:
        if text == "refresh":
            return PullPolicy.PERIODIC, _duration(refresh_after) if refresh_after else DAY
        if text.startswith("every_"):
            return PullPolicy.PERIODIC, _duration(text.removeprefix("every_"))
    except ValueError as exc:
        raise PlanError(f"pull_policy {text!r}: {exc}") from exc
    raise PlanError(f"unknown pull_policy {text!r}: use always, missing, never, build, daily, weekly or "
                    "every_<duration>")


def _duration(text: str) -> timedelta:
    return timedelta(microseconds=parse_duration(text) // 1000)


def image_key(ref: str) -> str:
    """The canonical form (`busybox` -> `docker.io/library/busybox:latest`) for matching."""
    try:
        return Reference.parse(ref).full
    except InvalidReference:
        return ref


def local_image(images: Mapping[str, str], ref: str) -> str | None:
    """The local image id `ref` names (`busybox` finds `busybox:latest`), None if absent."""
    found = images.get(ref)
    if found is not None:
        return found
    key = image_key(ref)
    return next((image for name, image in images.items() if image_key(name) == key), None)


def local_keys(refs: Iterable[str]) -> set[str]:
    return {image_key(r) for r in refs}


def last_pulled(ref: str, pulled: Mapping[str, datetime]) -> datetime | None:
    key = image_key(ref)
    found = [when for name, when in pulled.items() if image_key(name) == key]
    return max(found, default=None)
