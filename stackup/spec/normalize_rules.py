"""The machinery of the normalisation rules tables: scope, per-item and per-key application.

A rule takes one raw value and returns its long form or raises `ValueError`. `apply_rules`
reports a failing key at its path and drops it (so validation does not report it twice), and
`each` does the same for list entries, so one bad port does not hide the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackup.spec.errors import KeyPath
from stackup.spec.normalize_values import describe, shell_words
from stackup.spec.remap import IndexMap
from stackup.spec.units import normalize_duration, parse_bytes

Report = Callable[[KeyPath, str], None]


@dataclass(frozen=True)
class Scope:
    """What a rule needs: where relative paths start, the environment, where to report."""

    base: Path
    environment: Mapping[str, str]
    report: Report
    path: KeyPath
    indices: IndexMap | None = None
    """Where rewritten lists record the source index of each entry (for locating)."""


Rule = Callable[[Any, Scope], Any]


class Many(list[Any]):
    """Marks an item rule's result as several entries (one port spec -> many ports)."""


def each(value: object, scope: Scope, item: Callable[[Any, Scope], Any]) -> list[Any]:
    """Apply `item` to every entry of a list, reporting (and dropping) bad entries one by one."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {describe(value)}")
    out: list[Any] = []
    sources: list[int] = []
    for index, entry in enumerate(value):
        sub = Scope(scope.base, scope.environment, scope.report, (*scope.path, index), scope.indices)
        try:
            result = item(entry, sub)
        except ValueError as exc:
            scope.report(sub.path, str(exc))
            continue
        entries = result if isinstance(result, Many) else [result]
        out.extend(entries)
        sources.extend([index] * len(entries))
    if scope.indices is not None:
        scope.indices.record(scope.path, sources)
    return out


def apply_rules(out: dict[str, Any], scope: Scope, rules: Mapping[str, Rule]) -> None:
    """Run `rules` over `out` in place, in file order; a failing key is reported and removed."""
    for key in list(out):
        rule = rules.get(key)
        if rule is None:
            continue
        sub = Scope(scope.base, scope.environment, scope.report, (*scope.path, key), scope.indices)
        try:
            out[key] = rule(out[key], sub)
        except ValueError as exc:
            scope.report(sub.path, str(exc))
            del out[key]


def to_duration(value: object, _: Scope) -> str:
    return normalize_duration(value)


def to_shell(value: object, _: Scope) -> list[str] | None:
    return shell_words(value)


def to_bytes(value: object, _: Scope) -> int:
    return parse_bytes(value)
