"""Pass (on failure only): a model of what did validate, so reference checks still run.

When the tree does not validate there is no `Project`, and without one the cross-reference
checks (undefined networks, volumes, secrets, services; port clashes; cycles) used to be
skipped: `restart: sometimes` next to an undefined network reported only the first. Here every
service is validated on its own, the values pydantic rejected are cut out one round at a time,
and what is left becomes a `Project` the normal checks can read. Networks, volumes, secrets and
configs only need their names for those checks, so they are kept as empty models.

Cutting an item out of a list shifts the indices after it; `Salvaged.index` keeps, per list,
which input index each surviving item had, so every problem found on the salvaged model is
reported at the key path (and `file:line:col`) the user wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from stackup.spec.errors import KeyPath, Problem
from stackup.spec.models import Config, Network, Project, Secret, Service, Volume
from stackup.spec.remap import IndexMap
from stackup.spec.validate import describe_error

__all__ = ["Salvaged", "judgeable", "salvage"]

_ROUNDS = 12
"""Each round cuts at least one rejected value; a service needing more is given up as empty.
A rejected value is cut at the service key or the item below it (`volumes[0]`, `build.args`):
cutting less deep inside would leave a half value whose own errors are only the cut's."""

_CONSEQUENCES = frozenset({"missing", "too_short", "too_long"})
"""Errors a cut itself can cause (a required key or list item cut away): not the user's."""


class _Cut:
    """Marks a rejected value in the working copy of a service."""


_CUT = _Cut()


@dataclass(slots=True)
class Salvaged:
    """The salvaged project, problems only salvaging found, and the way back to the input's paths."""

    project: Project
    problems: list[Problem] = field(default_factory=list)
    """Errors pydantic reports only once earlier ones are gone (a model check after a field
    check), at the input's key paths, unlocated."""
    index: IndexMap = field(default_factory=IndexMap)
    """Lists items were cut from: the input index of each surviving item."""


def judgeable(problems: list[Problem], reported: list[Problem]) -> list[Problem]:
    """Drop "undefined network" (volume, ...) problems when the section itself was reported
    broken: its names are unknown then, so the reference cannot be judged."""
    broken = {str(p.path[0]) for p in reported if len(p.path) == 1}
    prefixes = tuple(f"undefined {kind[:-1]} " for kind in broken)
    return [p for p in problems if not (prefixes and p.message.startswith(prefixes))]


def salvage(tree: Mapping[str, Any]) -> Salvaged | None:
    """The part of a normalised tree that validates, or None when there is no `services` mapping."""
    services = tree.get("services", {})
    if not isinstance(services, Mapping):
        return None
    saved = Salvaged(project=Project.model_construct(name="salvaged"))
    kept = {str(name): _service(str(name), raw, saved) for name, raw in services.items()}
    names: dict[str, list[str]] = {}
    for section in ("networks", "volumes", "secrets", "configs"):
        value = tree.get(section, {})
        names[section] = [str(k) for k in value] if isinstance(value, Mapping) else []
    saved.project = Project.model_construct(
        name="salvaged", services=kept,
        networks={k: Network.model_construct() for k in names["networks"]},
        volumes={k: Volume.model_construct() for k in names["volumes"]},
        secrets={k: Secret.model_construct() for k in names["secrets"]},
        configs={k: Config.model_construct() for k in names["configs"]})
    return saved


def _service(name: str, raw: Any, saved: Salvaged) -> Service:
    """`raw` validated as a `Service`, with whatever pydantic rejects cut out."""
    base: KeyPath = ("services", name)
    work: Any = copy.deepcopy(raw) if isinstance(raw, Mapping) else {}
    for round_ in range(_ROUNDS):
        clean, local = _materialize(work, base)
        index = IndexMap(local)
        try:
            service = Service.model_validate(clean)
        except ValidationError as exc:
            errors = [{**e, "loc": (*base, *e["loc"])} for e in exc.errors()]
            found = [describe_error(e, {"services": {name: clean}}) for e in errors]  # type: ignore[arg-type]
            if round_:  # the first round's errors are the ones validate_project reported
                saved.problems.extend(replace(p, path=index.original(p.path))
                                      for e, p in zip(errors, found, strict=True)
                                      if e["type"] not in _CONSEQUENCES)
            cuts = {index.original(p.path)[: len(base) + 2] for p in found}
            if any(len(c) <= len(base) for c in cuts) or not _cut(work, [c[len(base):] for c in cuts]):
                saved.index.lists.update(local)
                return _fieldwise(clean)
            continue
        saved.index.lists.update(local)
        return service
    return Service()


def _fieldwise(clean: Mapping[str, Any]) -> Service:
    """A service-wide check failed (say `scale` against `deploy.replicas`): keep each key
    that validates on its own, so its references are still checked."""
    fields: dict[str, Any] = {}
    for key, value in clean.items():
        try:
            alone = Service.model_validate({key: value})
        except ValidationError:
            continue
        fields.update({f: getattr(alone, f) for f in alone.model_fields_set})
    return Service.model_construct(**fields)


def _materialize(value: Any, path: KeyPath) -> tuple[Any, dict[KeyPath, list[int]]]:
    """`value` without cut items, and the original indices of the list items that remain."""
    remaps: dict[KeyPath, list[int]] = {}

    def walk(node: Any, at: KeyPath) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*at, k)) for k, v in node.items() if v is not _CUT}
        if isinstance(node, list):
            indices = [i for i, v in enumerate(node) if v is not _CUT]
            if len(indices) != len(node):
                remaps[at] = indices
            return [walk(node[i], (*at, i)) for i in indices]
        return node

    return walk(value, path), remaps


def _cut(work: Any, paths: list[KeyPath]) -> bool:
    """Mark each path (relative to the service) as cut; False when nothing could be cut."""
    done = False
    for path in sorted(paths, key=len):
        node = work
        for part in path[:-1]:
            node = node[part] if _holds(node, part) else None
        if _holds(node, path[-1]):
            node[path[-1]] = _CUT
            done = True
    return done


def _holds(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
