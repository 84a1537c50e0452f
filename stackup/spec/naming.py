"""The project name as `load` computes it, without building the model.

Commands that act on what a project already runs (`down`, `ps`, `logs`, `stop`, `exec`, ...) need
its name, not its services: Compose loads and validates the whole stack for them, which costs
the pydantic models' import and a full validation, and refuses to tear down a stack whose file
was just broken. This reads the same inputs in the same order as `loader.load` (`-p`, then
`STACKUP_`/`COMPOSE_PROJECT_NAME` from the environment or `.env`, then the last top-level `name:`
of the stack files, interpolated, then the project directory), through the same functions, so
the two cannot drift apart (tests/spec/test_naming.py compares them over the corpus).
"""

from __future__ import annotations

from collections.abc import Mapping

from stackup.spec.dotenv import load_env_files
from stackup.spec.interpolate import InterpolationError, substitute
from stackup.spec.options import (
    LoadOptions,
    env_files,
    explicit_project_name,
    implicit_project_name,
    project_dir,
    stack_files,
)
from stackup.spec.yamlparse import Document, parse_file


def resolve_project_name(options: LoadOptions) -> str:
    """The name `load(options).project.name` would have. Raises `SpecError` when the stack
    files cannot be found or parsed and no name is given explicitly."""
    environ = dict(options.environ)
    dotenv = load_env_files(env_files(options, environ), environ)
    env = {**dotenv, **environ}
    explicit = explicit_project_name(options, env)
    if explicit:
        return explicit
    files, _ = stack_files(options, env)
    docs = [doc for path in files for doc in parse_file(path)]
    return implicit_project_name(name_from_files(docs, env), project_dir(options, files))


def name_from_files(docs: list[Document], env: Mapping[str, str]) -> str | None:
    """The last top-level `name:` among the files, interpolated (compose-go reads it early too)."""
    name = None
    for doc in docs:
        value = doc.tree.get("name")
        if isinstance(value, str) and value:
            name = value
    if name is None:
        return None
    try:
        return substitute(name, env.get)
    except InterpolationError:
        return None
