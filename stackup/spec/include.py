"""Pass: `include` (pull another stack's resources into this one).

Each include is loaded as a project of its own, as the Compose spec requires: its own project
directory (its relative paths mean what they mean there), its own `.env`/`env_file` for
interpolation, its own includes and extends. Only the result is imported, with every host path
already absolute, so nothing downstream needs to know a resource came from elsewhere.

A resource defined both here and in an included file is an error naming both places; Compose
says an include must not silently change a local definition (use `extends` or `-f` for that).
An identical definition on both sides is accepted (two includes sharing a network).

The loading itself is a callback (`IncludeLoader`) supplied by `load.py`, because an included
project runs the same per-file pipeline (parse, interpolate, include, extends, merge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackup.spec.errors import KeyPath, ProblemCollector, SourceMap
from stackup.spec.extends import rebase_paths
from stackup.spec.yamlparse import Document

RESOURCE_KINDS = ("services", "networks", "volumes", "secrets", "configs")


@dataclass(frozen=True, slots=True)
class IncludeRequest:
    """One `include` entry, with every path made absolute against the including project."""

    paths: tuple[Path, ...]
    project_dir: Path
    env_files: tuple[Path, ...]
    chain: tuple[Path, ...]
    """Files whose includes led here, outermost first; a repeat is an include cycle."""


IncludeLoader = Callable[[IncludeRequest], Document | None]


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def parse_entry(entry: Any, base: Path, chain: tuple[Path, ...]) -> IncludeRequest | str:
    """An include entry (a path, or `{path, env_file, project_directory}`) or what is wrong with it."""
    spec = {"path": entry} if isinstance(entry, str) else entry
    if not isinstance(spec, dict):
        return "an include entry must be a path or a mapping with `path`"
    unknown = sorted(set(spec) - {"path", "env_file", "project_directory"})
    if unknown:
        return f"unknown include option {unknown[0]!r} (expected path, env_file, project_directory)"
    paths = _strings(spec.get("path"))
    if not paths:
        return "include needs `path`: a file or a list of files"
    files = tuple((base / p).resolve(strict=False) for p in paths)
    project = spec.get("project_directory")
    if project is not None and not isinstance(project, str):
        return "include project_directory must be a path"
    project_dir = (base / project).resolve(strict=False) if project else files[0].parent
    env_files = _strings(spec.get("env_file")) if "env_file" in spec else []
    if env_files is None:
        return "include env_file must be a path or a list of paths"
    if not env_files and (project_dir / ".env").is_file():
        env_files = [str(project_dir / ".env")]
    return IncludeRequest(paths=files, project_dir=project_dir,
                          env_files=tuple((base / f).resolve(strict=False) for f in env_files),
                          chain=chain)


def _shown(path: Path, base: Path) -> str:
    """`path` as the including file would write it: relative to its directory when inside it."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def apply_includes(doc: Document, project_dir: Path, chain: tuple[Path, ...],
                   load_included: IncludeLoader, collector: ProblemCollector) -> Document:
    """`doc` with its `include` entries loaded and their resources imported (and `include` gone)."""
    entries = doc.tree.get("include")
    if entries is None:
        return doc
    tree = {k: v for k, v in doc.tree.items() if k != "include"}
    smap = SourceMap(dict(doc.source_map.entries))
    if not isinstance(entries, list):
        entries = [entries]
    origin: dict[KeyPath, str] = {}
    for index, entry in enumerate(entries):
        where: KeyPath = ("include", index)
        request = parse_entry(entry, project_dir, (*chain, doc.file))
        if isinstance(request, str):
            collector.add(where, request, location=doc.source_map.locate(where))
            continue
        cycle = [p for p in request.paths if p in request.chain]
        if cycle:
            names = " -> ".join(str(p) for p in (*request.chain[request.chain.index(cycle[0]):], cycle[0]))
            collector.add(where, f"include cycle: {names}", location=doc.source_map.locate(where))
            continue
        missing = [p for p in request.paths if not p.exists()]
        if missing:  # said here, where it is named: the file itself has no line to point at
            collector.add(where, f"file {_shown(missing[0], doc.file.parent)} not found",
                          location=doc.source_map.locate(where))
            continue
        included = load_included(request)
        if included is None:
            continue
        imported = rebase_paths(included.tree, request.project_dir)
        _import(tree, smap, doc, Document(included.file, included.display, imported, included.source_map),
                origin=origin, collector=collector)
    return Document(file=doc.file, display=doc.display, tree=tree, source_map=smap)


def _import(tree: dict[str, Any], smap: SourceMap, local: Document, included: Document, *,
            origin: dict[KeyPath, str], collector: ProblemCollector) -> None:
    for kind in RESOURCE_KINDS:
        resources = included.tree.get(kind)
        if not isinstance(resources, dict):
            continue
        target = tree.get(kind)
        if not isinstance(target, dict):
            target = {}
        target = dict(target)
        for name, definition in resources.items():
            path: KeyPath = (kind, name)
            if name in target and target[name] != definition:
                first = origin.get(path, local.display)
                here = smap.locate(path)
                collector.add(path, f"{kind[:-1]} {name!r} is defined in {first} and also in "
                                    f"{included.display} (included); rename one or use extends",
                              location=here)
                continue
            target[name] = definition
            origin.setdefault(path, included.display)
            smap.update(included.source_map, prefix=path, strip=path)
        tree[kind] = target
