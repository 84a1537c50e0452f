"""The short-to-long pass: a merged raw tree -> compose-go's canonical long form.

Runs after interpolation, include/extends and merge, and before `validate`. Output is still a
plain tree, but every short syntax is spelt out, relative host paths are absolute, defaults
that compose-go fills in are present (`networks: {default: null}`, `<project>_<key>` resource
names, `condition: service_started`), and durations and sizes are in one spelling. The pass
never raises: each malformed value is reported with its key path and left out, so a user sees
every mistake at once. Feeding `canonical()` output back in gives the same tree (idempotent),
which is what makes `stackup config` output a valid stack file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackup.spec.errors import KeyPath, ProblemCollector
from stackup.spec.normalize_rules import Report, Scope
from stackup.spec.normalize_service import normalize_service
from stackup.spec.normalize_values import absolute, as_bool, describe, mapping, string_list
from stackup.spec.remap import IndexMap

__all__ = ["NormalizeContext", "normalize_project"]

RESOURCE_KINDS = ("networks", "volumes", "secrets", "configs")


@dataclass(frozen=True)
class NormalizeContext:
    """What normalisation needs from outside the tree.

    `environment` resolves bare `environment: [FOO]` entries (and `build.args`) the way
    compose-go does: from the project's environment (`.env` + process env), else null.
    """

    project_dir: Path
    project_name: str
    environment: Mapping[str, str] = field(default_factory=dict)
    indices: IndexMap | None = None
    """Filled with the source index of each entry of a list normalisation rewrote."""


def normalize_project(
    tree: dict[str, Any], ctx: NormalizeContext, collector: ProblemCollector
) -> dict[str, Any]:
    """Return the long form of `tree` (which is not modified); problems go to `collector`."""
    out: dict[str, Any] = {k: v for k, v in tree.items() if k != "version"}
    name = ctx.project_name or tree.get("name")
    if name is not None:
        out["name"] = name
    project = str(name or "")

    def report(path: KeyPath, message: str) -> None:
        collector.add(path, message)

    base = ctx.project_dir
    services = tree.get("services")
    if services is None:
        services = {}
    if not isinstance(services, dict):
        report(("services",), f"expected a mapping of services, got {describe(services)}")
        services = {}
    normalized: dict[str, Any] = {}
    for svc_name, raw in services.items():
        scope = Scope(base, ctx.environment, report, ("services", str(svc_name)), ctx.indices)
        service = normalize_service(raw, scope)
        if service is not None:
            normalized[str(svc_name)] = service
    out["services"] = normalized

    for kind in RESOURCE_KINDS:
        value = tree.get(kind)
        if value is None:
            out.pop(kind, None)
            continue
        if not isinstance(value, dict):
            report((kind,), f"expected a mapping, got {describe(value)}")
            out.pop(kind, None)
            continue
        out[kind] = {
            str(key): res
            for key, item in value.items()
            if (res := _resource(kind, str(key), item, project=project, ctx=ctx, report=report)) is not None
        }
    _default_network(out, project)
    if "include" in tree:
        out["include"] = _includes(tree["include"], ctx, report)
    return out


def _resource(
    kind: str, key: str, item: object, *, project: str, ctx: NormalizeContext, report: Report
) -> dict[str, Any] | None:
    """A top-level network/volume/secret/config: external folded, name defaulted, paths made absolute."""
    path: KeyPath = (kind, key)
    if item is None:
        item = {}
    if not isinstance(item, dict):
        report(path, f"expected a mapping, got {describe(item)}")
        return None
    out = dict(item)
    external = out.get("external")
    if isinstance(external, dict):  # deprecated `external: {name: x}`
        ext_name = external.get("name")
        if ext_name is not None and out.get("name") not in (None, ext_name):
            report((*path, "name"), "name and external.name conflict; only use name")
        elif ext_name is not None:
            out["name"] = ext_name
        external = True
    if external is not None:
        out["external"] = as_bool(external)
    for key_name in ("internal", "attachable", "enable_ipv4", "enable_ipv6"):
        if key_name in out:
            out[key_name] = as_bool(out[key_name])
    if "labels" in out:
        try:
            out["labels"] = mapping(out["labels"], what="label")
        except ValueError as exc:
            report((*path, "labels"), str(exc))
            del out["labels"]
    if out.get("name") is None:
        out["name"] = key if out.get("external") is True else f"{project}_{key}"
    if kind in ("secrets", "configs") and isinstance(out.get("file"), str):
        out["file"] = absolute(out["file"], ctx.project_dir, ctx.environment)
    opts = out.get("driver_opts")
    local = kind == "volumes" and out.get("driver") == "local"
    if local and isinstance(opts, dict) and opts.get("o") == "bind" and isinstance(opts.get("device"), str):
        device = absolute(opts["device"], ctx.project_dir, ctx.environment)
        out["driver_opts"] = {**opts, "device": device}
    return out


def _default_network(out: dict[str, Any], project: str) -> None:
    """Services with neither `networks` nor `network_mode` join `default`, created on demand."""
    uses_default = False
    for service in out["services"].values():
        if "provider" in service or "network_mode" in service:
            continue
        nets = service.get("networks")
        if not nets:
            service["networks"] = {"default": None}
            uses_default = True
        elif isinstance(nets, dict) and "default" in nets:
            uses_default = True
    networks = out.get("networks") or {}
    if uses_default and "default" not in networks:
        networks = {**networks, "default": {"name": f"{project}_default"}}
    if networks:
        out["networks"] = networks


def _includes(value: object, ctx: NormalizeContext, report: Report) -> list[Any]:
    if not isinstance(value, list):
        report(("include",), f"expected a list, got {describe(value)}")
        return []
    out: list[Any] = []
    for index, entry in enumerate(value):
        item = {"path": entry} if isinstance(entry, str) else entry
        if not isinstance(item, dict):
            report(("include", index), f"expected a path or a mapping, got {describe(entry)}")
            continue
        item = dict(item)
        try:
            for key in ("path", "env_file"):
                if key in item:
                    paths = string_list(item[key])
                    item[key] = [absolute(p, ctx.project_dir, ctx.environment) for p in paths]
        except ValueError as exc:
            report(("include", index), str(exc))
            continue
        if isinstance(item.get("project_directory"), str):
            item["project_directory"] = absolute(item["project_directory"], ctx.project_dir, ctx.environment)
        out.append(item)
    return out
