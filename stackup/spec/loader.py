"""`load()`: stack files in, a validated `Project` out, or one `SpecError` listing every problem.

The passes run in this order, and the order is the point:

1. Environment first (`.env` / `--env-file`, OS variables winning): `.env` may set
   `COMPOSE_FILE` or `COMPOSE_PROFILES`, so it must be read before files are looked for.
2. Parse each file (`yamlparse`), keeping positions, resolving anchors and `<<` merge keys.
   YAML anchors are resolved before interpolation, as the spec says (`10-fragments.md`).
3. Project name, from `-p` / env / the top-level `name:` of the raw files / the directory, so
   `${COMPOSE_PROJECT_NAME}` can be used inside the files.
4. Interpolate each file on its own, before anything is merged: a variable means what it means
   in the file (and the `.env`) that wrote it, which matters once `include` brings in files
   with their own `.env`.
5. `include`, then `extends`, per file (compose-go's order): an extended service may come from
   an include, and an override file can still change the extended result.
6. Merge the `-f` files in order (later wins), with `!reset` / `!override`.
7. Normalise short syntax to long, then validate into the frozen pydantic model: rules about
   ports or volumes are written once, against the long form.
8. Profiles, then cross references and dependency cycles, on the typed model: a reference can
   only be judged once every file has been merged and disabled services removed.

Each pass reports into one collector and the load goes on as far as it can, so a user fixes
every mistake in one round; a pass that cannot produce its output (a file that does not parse,
a tree that does not validate) ends the load with everything found so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackup.spec.checks import Sources, add_unique, keep_names, validate_and_check
from stackup.spec.dotenv import load_env_files
from stackup.spec.errors import ProblemCollector, SourceMap, SpecError
from stackup.spec.extends import apply_extends
from stackup.spec.include import IncludeRequest, apply_includes
from stackup.spec.inputs import InputLog, Inputs, RecordingEnv
from stackup.spec.interpolate import interpolate_tree
from stackup.spec.merge import merge_documents
from stackup.spec.models import Project
from stackup.spec.naming import name_from_files
from stackup.spec.normalize import NormalizeContext, normalize_project
from stackup.spec.options import (
    LoadOptions,
    enabled_profiles,
    env_files,
    explicit_project_name,
    implicit_project_name,
    project_dir,
    stack_files,
    working_dir,
)
from stackup.spec.remap import IndexMap
from stackup.spec.yamlparse import Document, parse_file

__all__ = ["LoadOptions", "LoadedProject", "load"]


@dataclass(frozen=True, slots=True)
class LoadedProject:
    """A loaded stack: the model, where each key came from, and what the planner must hash."""

    project: Project
    source_map: SourceMap
    files: list[Path]
    warnings: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    """The interpolation environment (OS variables over `.env`), for `environment: [FOO]`."""
    referenced_files: dict[str, bytes] = field(default_factory=dict)
    """env_file / config / secret file contents by absolute path, for the desired-state hash."""
    disabled_services: tuple[str, ...] = ()
    all_profiles: tuple[str, ...] = ()
    """Every profile any service names, enabled or not (for `config --profiles`)."""
    inputs: Inputs | None = None
    """Files read and variables consulted (for `up`'s unchanged-inputs shortcut)."""

    @property
    def env(self) -> dict[str, str]:
        return self.environment


class _Session:
    """State shared by the passes of one load: collector, warnings, display names, caches."""

    def __init__(self, options: LoadOptions) -> None:
        self.base = working_dir(options)
        self.collector = ProblemCollector()
        self.warnings: list[str] = []
        self._missing: set[str] = set()
        self._parsed: dict[Path, list[Document] | None] = {}
        self.inputs = InputLog()

    def parsed_files(self) -> list[Path]:
        return list(self._parsed)

    def display(self, path: Path) -> str:
        """Paths under the working directory are shown relative (`compose.yaml:3:5`)."""
        try:
            return str(path.relative_to(self.base))
        except ValueError:
            return str(path)

    def missing(self, name: str) -> None:
        if name not in self._missing:
            self._missing.add(name)
            self.warnings.append(f'the "{name}" variable is not set; defaulting to a blank string')

    def absorb(self, err: SpecError) -> None:
        self.collector.extend(err.problems)

    def parse(self, path: Path) -> list[Document] | None:
        if path not in self._parsed:
            try:
                self._parsed[path] = parse_file(path, self.display(path))
            except SpecError as err:
                self.absorb(err)
                self._parsed[path] = None
        return self._parsed[path]

    def interpolate(self, doc: Document, env: Mapping[str, str]) -> Document:
        local = ProblemCollector(doc.source_map)
        tree = interpolate_tree(doc.tree, env.get, local, on_missing=self.missing)
        self.collector.extend(local.problems)
        return Document(doc.file, doc.display, tree, doc.source_map)

    def load_files(self, paths: tuple[Path, ...], pdir: Path, env: Mapping[str, str],
                   chain: tuple[Path, ...]) -> Document | None:
        """Parse, interpolate, include, extend and merge `paths` as one project's files."""
        tree: dict[str, Any] = {}
        smap = SourceMap()
        ok = True
        for path in paths:
            docs = self.parse(path)
            if docs is None:
                ok = False
                continue
            for raw in docs:
                doc = self.interpolate(raw, env)
                doc = apply_includes(doc, pdir, chain, lambda r: self.load_include(r, env),
                                     self.collector)
                doc = apply_extends(doc, lambda p: self.load_other(p, env), self.collector)
                tree, smap = merge_documents(tree, smap, doc.tree, doc.source_map, self.collector)
        if not ok:
            return None
        return Document(paths[0], self.display(paths[0]), tree, smap)

    def load_include(self, request: IncludeRequest, env: Mapping[str, str]) -> Document | None:
        """An included project: its env files fill in variables the including one lacks."""
        self.inputs.add_files(request.env_files)
        try:
            extra = load_env_files(list(request.env_files), env, on_missing=self.missing)
        except SpecError as err:
            self.absorb(err)
            return None
        scoped = {**extra, **env}
        return self.load_files(request.paths, request.project_dir, scoped, request.chain)

    def load_other(self, path: Path, env: Mapping[str, str]) -> Document | None:
        """The file named by `extends.file`: parsed and interpolated, tags resolved."""
        docs = self.parse(path)
        if docs is None:
            return None
        tree: dict[str, Any] = {}
        smap = SourceMap()
        for raw in docs:
            doc = self.interpolate(raw, env)
            tree, smap = merge_documents(tree, smap, doc.tree, doc.source_map, self.collector)
        return Document(path, self.display(path), tree, smap)


_KEYED_LISTS = ("depends_on", "networks", "environment", "labels", "annotations", "sysctls", "extra_hosts")


def _alias_list_keys(tree: dict[str, Any], smap: SourceMap) -> None:
    """Let `services.web.depends_on.db` find where `depends_on: [db]` wrote `db`.

    Normalisation turns these lists into mappings keyed by name; later passes report at the
    mapping path, which the parser never saw.
    """
    services = tree.get("services")
    for name, service in (services.items() if isinstance(services, dict) else ()):
        for key in _KEYED_LISTS:
            items = service.get(key) if isinstance(service, dict) else None
            if not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                base = ("services", name, key)
                loc = smap.entries.get((*base, index))
                entry = str(item).split("=", 1)[0]
                if loc is not None and (*base, entry) not in smap.entries:
                    smap.add((*base, entry), loc)


def load(options: LoadOptions) -> LoadedProject:
    """Load, merge, validate and check the stack `options` describe (see the module docstring).

    A `SpecError` carries the warnings gathered so far (an unset variable often explains the
    error that follows it).
    """
    session = _Session(options)
    try:
        return _load(options, session)
    except SpecError as err:
        err.warnings = tuple(session.warnings)
        raise


def _load(options: LoadOptions, session: _Session) -> LoadedProject:
    environ = dict(options.environ)
    log = session.inputs
    dotenv_files = env_files(options, RecordingEnv(environ, log))
    log.add_files(dotenv_files)
    try:
        dotenv = load_env_files(dotenv_files, RecordingEnv(environ, log), on_missing=session.missing)
    except SpecError as err:
        raise SpecError(err.problems) from None
    if any(k.startswith(("COMPOSE_", "STACKUP_")) for k in dotenv):
        log.enumerated = True  # options from a .env change discovery itself: no shortcut proofs
    env = RecordingEnv({**dotenv, **environ}, log)
    files, notes = stack_files(options, env)
    session.warnings.extend(notes)
    pdir = project_dir(options, files)

    raw_docs = [session.parse(f) for f in files]
    session.collector.raise_if_any()
    name = explicit_project_name(options, env) or implicit_project_name(
        name_from_files([d for docs in raw_docs for d in docs or ()], env), pdir)
    env = env.with_value("COMPOSE_PROJECT_NAME", name)

    merged = session.load_files(tuple(files), pdir, env, ())
    if merged is None:
        raise SpecError(session.collector.problems)
    tree, smap = {**merged.tree, "name": name}, merged.source_map
    _alias_list_keys(tree, smap)

    collector = session.collector
    collector.source_map = smap
    normal = ProblemCollector(smap)
    indices = IndexMap()
    long_form = normalize_project(tree, NormalizeContext(pdir, name, env, indices), normal)
    add_unique(collector, normal.problems)
    keep_names(tree, long_form)
    checked = validate_and_check(long_form, Sources(smap, indices), collector,
                                 enabled_profiles(options, env), options.services)
    project, selection, referenced = checked.project, checked.selection, checked.referenced
    session.warnings.extend(selection.warnings)
    profiles = sorted({p for service in project.services.values() for p in service.profiles})
    log.add_files([*session.parsed_files(), *referenced])
    return LoadedProject(project=selection.project, source_map=smap, files=files,
                         warnings=session.warnings, environment=env.unrecorded(), referenced_files=referenced,
                         inputs=Inputs.from_log(log, environ),
                         disabled_services=tuple(sorted(selection.disabled)),
                         all_profiles=tuple(profiles))
