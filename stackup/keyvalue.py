"""`KEY=VALUE` text, parsed in one place: `-e`/`--env` flags, `environment:` lists, label filters,
OCI `process.env`. A bare `KEY` (no `=`) means "take it from the environment" in Compose's lists,
so it is kept distinct from `KEY=` (set to empty).
"""

from __future__ import annotations

from collections.abc import Iterable

from stackup.errors import UsageError


def split(text: str) -> tuple[str, str | None]:
    """`"A=b=c"` -> `("A", "b=c")`; `"A"` -> `("A", None)`; `"A="` -> `("A", "")`."""
    key, sep, value = text.partition("=")
    return key, (value if sep else None)


def to_dict(items: Iterable[str]) -> dict[str, str]:
    """OCI-style `KEY=VALUE` entries (bare keys become empty values); later entries win."""
    out: dict[str, str] = {}
    for item in items:
        key, value = split(item)
        out[key] = value or ""
    return out


def parse_assignments(items: Iterable[str], *, what: str = "KEY=VALUE") -> dict[str, str]:
    """Command-line assignments: every item must be `KEY=VALUE` with a non-empty key."""
    out: dict[str, str] = {}
    for item in items:
        key, value = split(item)
        if not key or value is None:
            raise UsageError(f'{what} expects KEY=VALUE, got "{item}"')
        out[key] = value
    return out
