"""Field-by-field differences between a rendered object and the cluster's copy (pure).

Only fields the rendering sets are compared: the server fills in defaults (`revisionHistoryLimit`,
`status`, ...) that a user never wrote and must not see as drift. Fields stackup set last time
(the `stackup` entry of `managedFields`) but no longer renders are reported as removed, because
server-side apply will remove them. Lists of named items (containers, env, ports, volumes) are
matched by `name`, so a path reads `spec.template.spec.containers[web].env[DB_URL].value`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from stackup.deploy.kubernetes.names import FIELD_MANAGER

REMOVED = "(removed)"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.path}: {_show(self.before)} -> {_show(self.after)}"


@dataclass(frozen=True)
class ObjectChange:
    action: Action
    ref: str
    changes: tuple[Change, ...] = ()
    cause: str = ""


@dataclass(frozen=True)
class DeployPlan:
    items: tuple[ObjectChange, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __str__(self) -> str:
        if not self.items:
            return "no changes"
        lines = []
        marks = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-"}
        for item in self.items:
            cause = f" ({item.cause})" if item.cause else ""
            lines.append(f"{marks[item.action]} {item.action} {item.ref}{cause}")
            lines.extend(f"    {change}" for change in item.changes)
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if value == REMOVED:
        return REMOVED
    return json.dumps(value, sort_keys=True)


def _named(items: Any) -> bool:
    return isinstance(items, list) and bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _owned_fields(current: dict[str, Any]) -> dict[str, Any]:
    for entry in current.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            fields: dict[str, Any] = entry.get("fieldsV1") or {}
            return fields
    return {}


def diff_object(desired: dict[str, Any], current: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    _walk(desired, current, _owned_fields(current), "", changes)
    return changes


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _walk(want: Any, have: Any, owned: dict[str, Any] | None, path: str, out: list[Change]) -> None:
    if isinstance(want, dict) and isinstance(have, dict):
        for key, value in want.items():
            sub = (owned or {}).get(f"f:{key}")
            _walk(value, have.get(key), sub, _join(path, key), out)
        for key in have:
            if key not in want and owned is not None and f"f:{key}" in owned:
                out.append(Change(_join(path, key), have[key], REMOVED))
        return
    if _named(want) and (have is None or _named(have) or have == []):
        by_name = {item["name"]: item for item in have or []}
        for item in want:
            name = item["name"]
            sub = (owned or {}).get("k:" + json.dumps({"name": name}, separators=(",", ":")))
            _walk(item, by_name.get(name, {}), sub, f"{path}[{name}]", out)
        wanted = {item["name"] for item in want}
        for name, item in by_name.items():
            key = "k:" + json.dumps({"name": name}, separators=(",", ":"))
            if name not in wanted and owned is not None and key in owned:
                out.append(Change(f"{path}[{name}]", item, REMOVED))
        return
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have) and all(
        isinstance(w, dict) for w in want
    ):
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            _walk(w, h, None, f"{path}[{i}]", out)
        return
    if want != have:
        out.append(Change(path, have, want))


def plan_changes(desired: list[dict[str, Any]], current: dict[str, dict[str, Any]]) -> DeployPlan:
    """`current`: the cluster's owned objects by `Kind/name` (what `Cluster.owned` lists)."""
    items: list[ObjectChange] = []
    rendered = set()
    for manifest in desired:
        ref = f"{manifest['kind']}/{manifest['metadata']['name']}"
        rendered.add(ref)
        have = current.get(ref)
        if have is None:
            items.append(ObjectChange(Action.CREATE, ref))
            continue
        changes = diff_object(manifest, have)
        if changes:
            items.append(ObjectChange(Action.UPDATE, ref, tuple(changes)))
    for ref in sorted(set(current) - rendered):
        items.append(ObjectChange(Action.DELETE, ref, cause="no longer in the stack"))
    return DeployPlan(tuple(items))
