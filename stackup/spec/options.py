"""What to load: the options, stack file discovery and the project name rules.

These follow Docker Compose (compose-go `cli/options.go`, `loader.NormalizeProjectName`) so that
a directory that works with `docker compose` loads the same files, the same `.env` and gets the
same project name here; a different name would mean different containers and networks.
Every `COMPOSE_*` variable has a `STACKUP_*` twin that wins when both are set, so stackup can be
configured without changing how Docker Compose behaves in the same shell.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stackup.spec.errors import Location, Problem, SpecError

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml",
                 "stackup.yaml")
"""Names searched for, in order of preference, in the working directory and then its parents."""

_NAME_CHARS = re.compile(r"[a-z0-9_-]")


@dataclass(slots=True)
class LoadOptions:
    """Everything the CLI can say about which stack to load (all optional)."""

    files: list[Path] = field(default_factory=list)
    project_directory: Path | None = None
    project_name: str | None = None
    env_files: list[Path] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    """Services named on the command line: their profiles are enabled (as `docker compose`)."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    working_dir: Path | None = None
    """Where relative `-f` paths start and discovery begins; the process's cwd by default."""


def setting(environ: Mapping[str, str], name: str) -> str | None:
    """`STACKUP_<name>`, else `COMPOSE_<name>`; unset and empty both mean "not given"."""
    for prefix in ("STACKUP_", "COMPOSE_"):
        value = environ.get(prefix + name)
        if value:
            return value
    return None


def _error(message: str, where: str = "stackup") -> SpecError:
    return SpecError([Problem(message=message, location=Location(where))])


def working_dir(options: LoadOptions) -> Path:
    return (options.working_dir or Path.cwd()).absolute()


def env_file_dir(options: LoadOptions) -> Path:
    """Where the default `.env` is read: before discovery, as compose-go does, so `.env` can set
    `COMPOSE_FILE`: the project directory, else the first `-f` file's directory, else cwd."""
    base = working_dir(options)
    if options.project_directory is not None:
        return (base / options.project_directory).resolve(strict=False)
    if options.files:
        return (base / options.files[0]).resolve(strict=False).parent
    return base


def env_files(options: LoadOptions, environ: Mapping[str, str]) -> list[Path]:
    """`--env-file` (repeatable), else `COMPOSE_ENV_FILES` (comma-separated), else `./.env`."""
    base = working_dir(options)
    if options.env_files:
        return [(base / f).resolve(strict=False) for f in options.env_files]
    listed = setting(environ, "ENV_FILES")
    if listed:
        return [(base / f.strip()).resolve(strict=False) for f in listed.split(",") if f.strip()]
    default = env_file_dir(options) / ".env"
    return [default] if default.is_file() else []


def stack_files(options: LoadOptions, environ: Mapping[str, str]) -> tuple[list[Path], list[str]]:
    """The files to merge, in order, and warnings (several candidates in one directory).

    `-f` wins; then `COMPOSE_FILE` (split on `COMPOSE_PATH_SEPARATOR`, default `os.pathsep`);
    then the first default name found walking up from the working directory, plus its
    `<name>.override.yaml|yml` next to it.
    """
    base = working_dir(options)
    if options.files:
        return [(base / f).resolve(strict=False) for f in options.files], []
    listed = setting(environ, "FILE")
    if listed:
        separator = setting(environ, "PATH_SEPARATOR") or os.pathsep
        return [(base / f).resolve(strict=False) for f in listed.split(separator) if f], []
    start = (base / options.project_directory) if options.project_directory else base
    for directory in (start, *start.parents):
        found = [directory / name for name in DEFAULT_FILES if (directory / name).is_file()]
        if not found:
            continue
        warnings = []
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            warnings.append(f"found several stack files in {directory} ({names}); using {found[0].name}")
        stem = found[0].name.rsplit(".", 1)[0]
        overrides = [directory / f"{stem}.override.{ext}" for ext in ("yaml", "yml")]
        return [found[0], *[p for p in overrides if p.is_file()][:1]], warnings
    names = ", ".join(DEFAULT_FILES)
    raise _error(f"no stack file found in {start} or its parents (looked for {names}); "
                 f"use -f to name one")


def project_dir(options: LoadOptions, files: list[Path]) -> Path:
    """`--project-directory`, else the directory of the first stack file."""
    if options.project_directory is not None:
        return (working_dir(options) / options.project_directory).resolve(strict=False)
    return files[0].parent if files else working_dir(options)


def enabled_profiles(options: LoadOptions, environ: Mapping[str, str]) -> list[str]:
    """`--profile` values, else `COMPOSE_PROFILES` (comma-separated)."""
    if options.profiles:
        return list(options.profiles)
    listed = setting(environ, "PROFILES") or ""
    return [p.strip() for p in listed.split(",") if p.strip()]


def normalize_project_name(name: str) -> str:
    """compose-go's rule: lowercase, keep only [a-z0-9_-], strip leading `_` and `-`."""
    kept = "".join(_NAME_CHARS.findall(name.lower()))
    return kept.lstrip("_-")


def check_project_name(name: str, source: str) -> str:
    """An explicitly given name must already be normal; say which option gave a bad one."""
    if not name or normalize_project_name(name) != name:
        raise _error(f"invalid project name {name!r} (from {source}): must consist only of lowercase "
                     f"letters, digits, hyphens and underscores, and start with a letter or digit")
    return name


def explicit_project_name(options: LoadOptions, environ: Mapping[str, str]) -> str | None:
    """`-p` > `STACKUP_PROJECT_NAME` > `COMPOSE_PROJECT_NAME`, validated; None when not given."""
    if options.project_name:
        return check_project_name(options.project_name, "-p/--project-name")
    for variable in ("STACKUP_PROJECT_NAME", "COMPOSE_PROJECT_NAME"):
        value = environ.get(variable)
        if value:
            return check_project_name(value, variable)
    return None


def implicit_project_name(from_file: str | None, directory: Path) -> str:
    """Top-level `name:` (normalised, as compose-go does), else the project directory's name."""
    for candidate, source in ((from_file, "the top-level `name:`"), (directory.name, str(directory))):
        if candidate:
            name = normalize_project_name(candidate)
            if name:
                return name
            if candidate is from_file:
                continue
            raise _error(f"cannot derive a project name from {source}: nothing left after "
                         f"normalisation; set `name:` or use -p")
    raise _error(f"cannot derive a project name from {directory}; set `name:` or use -p")
