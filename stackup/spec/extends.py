"""Pass: `extends` (a service inherits another's definition, from this file or another).

Runs per file after interpolation and `include`, before the `-f` files are merged, as compose-go
does: so a service can extend one that an include brought in, and an override file can still
change the result. The inherited definition is merged under the extending one with the same
rules as `-f` files (`merge.py`), so `ports` or `environment` behave the same whichever way they
were combined.

A service taken from another file keeps meaning what it meant there: its relative paths (build
context, env_file, bind mounts, watch paths) are made absolute against *that* file's directory
before it is merged here. `rebase_paths` is that table; `include` reuses it for whole files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackup.spec.errors import KeyPath, ProblemCollector, SourceMap
from stackup.spec.merge import Located, merge_trees
from stackup.spec.yamlparse import Document
from stackup.text import did_you_mean

DocumentLoader = Callable[[Path], Document | None]
"""Parses and interpolates a file named by `extends.file` (None when it failed: already reported)."""

_URL_PREFIXES = ("http://", "https://", "git://", "git@", "github.com/", "ssh://")


def _rebased(value: Any, base: Path) -> Any:
    """`./x` or `x` -> `<base>/x`; absolute, `~` and remote references are left alone."""
    if not isinstance(value, str) or not value or "://" in value or value.startswith(_URL_PREFIXES):
        return value
    if value.startswith(("/", "~", "$")):
        return value
    return str((base / value).resolve(strict=False))


def _rebase_volume(item: Any, base: Path) -> Any:
    """Only bind mounts have host paths; a short source that starts with `.` is one."""
    if isinstance(item, dict):
        if item.get("type") == "bind" and "source" in item:
            return {**item, "source": _rebased(item["source"], base)}
        return item
    if isinstance(item, str) and item.startswith("."):
        source, sep, rest = item.partition(":")
        return f"{_rebased(source, base)}{sep}{rest}"
    return item


def _rebase_env_file(value: Any, base: Path) -> Any:
    if isinstance(value, list):
        return [_rebase_env_file(item, base) for item in value]
    if isinstance(value, dict) and "path" in value:
        return {**value, "path": _rebased(value["path"], base)}
    return _rebased(value, base)


def _rebase_build(value: Any, base: Path) -> Any:
    if isinstance(value, str):
        return _rebased(value, base)
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if "context" in out:
        out["context"] = _rebased(out["context"], base)
    elif "dockerfile_inline" not in out:
        out["context"] = str(base)
    contexts = out.get("additional_contexts")
    if isinstance(contexts, dict):
        out["additional_contexts"] = {k: _rebased(v, base) for k, v in contexts.items()}
    return out


def _rebase_watch(value: Any, base: Path) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("watch"), list):
        return value
    rules = [{**rule, "path": _rebased(rule["path"], base)} if isinstance(rule, dict) and "path" in rule
             else rule for rule in value["watch"]]
    return {**value, "watch": rules}


def _each(fn: Callable[[Any, Path], Any]) -> Callable[[Any, Path], Any]:
    return lambda value, base: [fn(v, base) for v in value] if isinstance(value, list) else value


SERVICE_PATHS: dict[str, Callable[[Any, Path], Any]] = {
    "build": _rebase_build,
    "env_file": _rebase_env_file,
    "label_file": _rebase_env_file,
    "volumes": _each(_rebase_volume),
    "develop": _rebase_watch,
}
"""Service keys holding host paths, and how to rebase each (compose-go `paths/resolve.go`)."""

_RESOURCE_FILE_KEYS = ("configs", "secrets")


def rebase_service(service: Any, base: Path) -> Any:
    """A copy of one service definition with its host paths made absolute against `base`."""
    if not isinstance(service, dict):
        return service
    return {key: SERVICE_PATHS[key](value, base) if key in SERVICE_PATHS else value
            for key, value in service.items()}


def rebase_paths(tree: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of a whole stack tree with every host path made absolute against `base`."""
    out = dict(tree)
    services = out.get("services")
    if isinstance(services, dict):
        out["services"] = {name: rebase_service(svc, base) for name, svc in services.items()}
    for kind in _RESOURCE_FILE_KEYS:
        resources = out.get(kind)
        if isinstance(resources, dict):
            out[kind] = {name: {**res, "file": _rebased(res["file"], base)}
                         if isinstance(res, dict) and "file" in res else res
                         for name, res in resources.items()}
    return out


class _Resolver:
    """Resolves `extends` chains in one document, memoised per (file, service)."""

    def __init__(self, load_other: DocumentLoader, collector: ProblemCollector) -> None:
        self.load_other = load_other
        self.collector = collector
        self.done: dict[tuple[Path, str], Located | None] = {}

    def resolve(self, doc: Document, name: str, chain: tuple[tuple[Path, str, str], ...]) -> Located | None:
        """`services.<name>` of `doc` with its extends applied (None: reported problem)."""
        key = (doc.file, name)
        if key in self.done:
            return self.done[key]
        path: KeyPath = ("services", name)
        service = doc.tree["services"][name]
        own = Located(service, path, doc.source_map)
        extends = service.get("extends") if isinstance(service, dict) else None
        if extends is None:
            self.done[key] = own
            return own
        if any(link[:2] == key for link in chain):
            cycle = [*chain, (doc.file, name, doc.display)]
            start = next(i for i, link in enumerate(cycle) if link[:2] == key)
            text = " -> ".join(f"{svc} ({shown})" for _, svc, shown in cycle[start:])
            self.collector.add((*path, "extends"), f"extends cycle: {text}",
                               location=doc.source_map.locate((*path, "extends")))
            return None
        base = self._base(doc, name, extends, (*chain, (doc.file, name, doc.display)))
        if base is None:
            self.done[key] = None
            return None
        trimmed = {k: v for k, v in service.items() if k != "extends"}
        value, smap = merge_trees(base, Located(trimmed, path, doc.source_map), at=path,
                                  collector=self.collector)
        result = Located(value, (), smap)
        self.done[key] = result
        return result

    def _base(self, doc: Document, name: str, extends: Any,
              chain: tuple[tuple[Path, str, str], ...]) -> Located | None:
        where: KeyPath = ("services", name, "extends")
        if isinstance(extends, str):
            ref, file = extends, None
        elif isinstance(extends, dict) and isinstance(extends.get("service"), str):
            ref, file = extends["service"], extends.get("file")
        else:
            self.collector.add(where, "extends must be a service name or {service: ..., file: ...}",
                               location=doc.source_map.locate(where))
            return None
        other = doc
        if file is not None:
            target = Path(str(file))
            target = target if target.is_absolute() else doc.file.parent / target
            if not target.exists():  # said here, where it is named: the file itself has no line to point at
                self.collector.add((*where, "file"), f"file {file} not found",
                                   location=doc.source_map.locate((*where, "file")))
                return None
            loaded = self.load_other(target.resolve(strict=False))
            if loaded is None:
                return None
            other = loaded
        services = other.tree.get("services")
        if not isinstance(services, dict) or ref not in services:
            known = sorted(services) if isinstance(services, dict) else []
            in_file = f" in {other.display}" if other is not doc else ""
            self.collector.add(where, f"extends unknown service {ref!r}{in_file}",
                               hint=did_you_mean(ref, known),
                               location=doc.source_map.locate(where))
            return None
        base = self.resolve(other, ref, chain)
        if base is None or other is doc:
            return base
        rebased = rebase_service(base.value, other.file.parent)
        return Located(rebased, base.path, base.source_map)


def apply_extends(doc: Document, load_other: DocumentLoader, collector: ProblemCollector) -> Document:
    """`doc` with every service's `extends` resolved and removed."""
    services = doc.tree.get("services")
    if not isinstance(services, dict) or not any(
            isinstance(s, dict) and "extends" in s for s in services.values()):
        return doc
    resolver = _Resolver(load_other, collector)
    smap = SourceMap(dict(doc.source_map.entries))
    resolved: dict[str, Any] = {}
    for name, service in services.items():
        result = resolver.resolve(doc, name, ())
        if result is None:
            resolved[name] = {k: v for k, v in service.items() if k != "extends"}
            continue
        resolved[name] = result.value
        if result.source_map is not doc.source_map:
            smap.update(result.source_map, prefix=("services", name))
    return Document(file=doc.file, display=doc.display, tree={**doc.tree, "services": resolved},
                    source_map=smap)
