"""Field-level differences between the configuration a container was made from and the wanted one.

This is what turns "config changed" into `environment.DB_URL: "a" -> "b"`. The old side comes from
the container's labels (`io.stackup.config` holds the canonical service JSON), the new side from the
project, so the diff needs no engine and is the same on every run: keys are walked in sorted order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class _Absent(Enum):
    """Marks a side where the key does not exist (distinct from a JSON `null`)."""

    ABSENT = "absent"


ABSENT = _Absent.ABSENT
Value = Any  # a JSON value, or ABSENT


@dataclass(frozen=True, slots=True)
class Change:
    """One changed leaf: `path` in the user's terms, the old and new values, or a `note` instead.

    A note is used where values are not worth printing or not known (file contents, a container made
    before the config label existed): `env_file ./app.env: content changed`.
    """

    path: str
    old: Value = ABSENT
    new: Value = ABSENT
    note: str | None = None

    def __str__(self) -> str:
        if self.note is not None:
            return f"{self.path}: {self.note}"
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.old is not ABSENT:
            out["old"] = self.old
        if self.new is not ABSENT:
            out["new"] = self.new
        if self.note is not None:
            out["note"] = self.note
        return out


def diff_values(old: Value, new: Value, path: str = "") -> list[Change]:
    """Leaf differences between two JSON values, in sorted key order.

    Maps recurse by key and equal-length lists by index (`ports[0].published`); lists that grew or
    shrank are shown whole, since an index-wise diff of a shifted list would mislead.
    """
    if old == new:
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[Change] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out.extend(diff_values(old.get(key, ABSENT), new.get(key, ABSENT), sub))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(diff_values(a, b, f"{path}[{i}]"))
        return out
    return [Change(path, old, new)]


def diff_components(
    old_components: Mapping[str, str],
    new_components: Mapping[str, str],
    old_config: Mapping[str, Any] | None,
    new_config: Mapping[str, Any],
) -> list[Change]:
    """Changes between two hash-component sets, expanded to leaves where the values are known.

    Components are `field -> digest` plus `env_file <path> -> digest`; a field whose digest differs is
    expanded with `diff_values` when the old canonical JSON is available.
    """
    out: list[Change] = []
    for name in sorted(set(old_components) | set(new_components)):
        before, after = old_components.get(name), new_components.get(name)
        if before == after:
            continue
        if name.startswith("env_file "):
            note = "added" if before is None else "removed" if after is None else "content changed"
            out.append(Change(name, note=note))
        elif old_config is not None:
            leaves = diff_values(old_config.get(name, ABSENT), new_config.get(name, ABSENT), name)
            out.extend(leaves or [Change(name, note="changed")])
        else:
            out.append(Change(name, note="changed"))
    return out


def _show(value: Value) -> str:
    if value is ABSENT:
        return "(unset)"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
