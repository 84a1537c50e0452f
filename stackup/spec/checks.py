"""Passes 7-8 of the loader: validate the long form, then check references, reporting everything.

A failed validation no longer ends the load before the reference checks: `salvage` builds a
model of what did validate and the same checks run on it, so `restart: sometimes` next to an
undefined network reports both. Problems found on a rewritten tree (normalisation expands and
drops list entries, salvaging cuts them) are moved back to the key path and `file:line:col`
the user wrote; a key already reported by an earlier pass is not reported again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackup.spec.errors import Problem, ProblemCollector, SourceMap, SpecError
from stackup.spec.models import Project
from stackup.spec.profiles import ProfileSelection, select_profiles
from stackup.spec.references import check_references, raise_collected, raw_dependency_problems
from stackup.spec.remap import IndexMap, MappedSourceMap
from stackup.spec.salvage import judgeable, salvage
from stackup.spec.validate import validate_project

__all__ = ["Checked", "Sources", "add_unique", "keep_names", "validate_and_check"]


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the parsed tree's keys were written, and how normalisation re-indexed its lists."""

    source_map: SourceMap
    indices: IndexMap

    def long_form(self) -> SourceMap:
        """A map that locates paths of the normalised tree."""
        return MappedSourceMap(self.source_map, self.indices) if self.indices.lists else self.source_map

    def restore(self, problems: Sequence[Problem]) -> list[Problem]:
        return [self.indices.restore(p, self.source_map) for p in problems]


@dataclass(frozen=True, slots=True)
class Checked:
    project: Project
    selection: ProfileSelection
    referenced: dict[str, bytes]


def add_unique(collector: ProblemCollector, problems: Sequence[Problem]) -> None:
    """Keep one problem per key: a value already reported (say, by interpolation) is not
    reported again by a later pass that saw the same broken value."""
    seen = [p.path for p in collector.problems if p.path]
    for problem in problems:
        if any(problem.path[: len(s)] == s for s in seen):
            continue
        collector.problems.append(problem)


def keep_names(tree: dict[str, Any], long_form: dict[str, Any]) -> None:
    """A service normalisation dropped (already reported) keeps its name as an empty service,
    so a `depends_on` naming it is not also called undefined."""
    raw, kept = tree.get("services"), long_form.get("services")
    if isinstance(raw, dict) and isinstance(kept, dict):
        for name in raw:
            kept.setdefault(str(name), {})


def validate_and_check(long_form: dict[str, Any], sources: Sources, collector: ProblemCollector,
                       profiles: list[str], named: list[str]) -> Checked:
    """The project, its enabled services and referenced files; or `SpecError` with every problem
    in `collector` and those found here."""
    located = sources.long_form()
    try:
        project = validate_project(long_form, located)
    except SpecError as err:
        add_unique(collector, sources.restore(err.problems))
        _check_salvaged(long_form, sources, collector, profiles, named)
    selection = select_profiles(project, profiles, named)
    late = ProblemCollector(located)
    cycles = check_references(selection.project, located, late, selection.disabled)
    referenced = read_referenced(selection.project, late)
    add_unique(collector, judgeable(sources.restore(late.problems), collector.problems))
    raise_collected(collector, cycles)
    return Checked(project, selection, referenced)


def _check_salvaged(long_form: dict[str, Any], sources: Sources, collector: ProblemCollector,
                    profiles: list[str], named: list[str]) -> None:
    """The model did not validate: run the reference checks on the part that did, then fail."""
    located = sources.long_form()
    late = ProblemCollector(located)
    saved = salvage(long_form)
    if saved is None:
        raw_dependency_problems(long_form, late)
        add_unique(collector, sources.restore(late.problems))
        raise SpecError(collector.problems)
    late.source_map = MappedSourceMap(located, saved.index)
    selection = select_profiles(saved.project, profiles, named)
    cycles = check_references(selection.project, late.source_map, late, selection.disabled)
    read_referenced(selection.project, late)
    found = [saved.index.restore(p, located) for p in late.problems]
    found += [Problem(p.message, p.path, located.locate(p.path), p.hint) for p in saved.problems]
    add_unique(collector, judgeable(sources.restore(found), collector.problems))
    raise_collected(collector, cycles)
    raise SpecError(collector.problems)


def read_referenced(project: Project, collector: ProblemCollector) -> dict[str, bytes]:
    """Contents of env files, config and secret files the enabled services use."""
    out: dict[str, bytes] = {}
    wanted: list[tuple[tuple[str | int, ...], str, bool]] = []
    for name, service in project.services.items():
        for index, env_file in enumerate(service.env_file):
            wanted.append((("services", name, "env_file", index), env_file.path, env_file.required))
    used = {ref.source for s in project.services.values() for ref in (*s.configs, *s.secrets)}
    for kind, resources in (("configs", project.configs), ("secrets", project.secrets)):
        for key, resource in resources.items():
            if resource.file and key in used:
                # as Compose: a missing config/secret file is an error of `up`, not of loading
                wanted.append(((kind, key, "file"), resource.file, False))
    for path, file, required in wanted:
        try:
            out[file] = Path(file).read_bytes()
        except FileNotFoundError:
            if required:
                collector.add(path, f"file {file} not found")
        except OSError as exc:
            collector.add(path, f"cannot read {file}: {exc.strerror or exc}")
    return out


