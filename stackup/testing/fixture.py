"""`stack_fixture`: a pytest fixture that brings a stack up once per scope and always removes it.

    # conftest.py
    from stackup.testing import stack_fixture

    web_stack = stack_fixture("compose.yaml", scope="session", services=["web"])

    # test_web.py
    def test_home(web_stack):
        assert urllib.request.urlopen(web_stack.url("web", 8000)).status == 200

The fixture's name is the variable it is assigned to (or `name=`). Set-up is `up --wait`; the
finalizer is `down -v`, run when tests fail, on Ctrl-C and on SIGTERM (see `signals`), skipped
with `--stackup-keep` (the run's summary then says how to reach and remove what was kept).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from stackup.errors import StackFailed
from stackup.testing.environment import (
    DEFAULT_WAIT_TIMEOUT_S,
    StackEnvironment,
    StackSpec,
    resolve_files,
    unique_name,
    worker_id,
)

Scope = Literal["session", "package", "module", "class", "function"]

DEFAULT_LOG_LINES = 50


@dataclass
class PluginState:
    """One pytest run's stacks: the options, the stacks up now, the ones kept for debugging."""

    keep: bool = False
    log_lines: int = DEFAULT_LOG_LINES
    live: dict[str, StackEnvironment] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)


STATE = pytest.StashKey[PluginState]()


def state_of(config: pytest.Config) -> PluginState:
    """The run's state; defaults when the plugin was disabled (`-p no:stackup`) but a conftest
    still declares a fixture: stacks then still come up and go away, without the extras."""
    found = config.stash.get(STATE, None)
    if found is None:
        found = config.stash[STATE] = PluginState()
    return found


def stack_fixture(
    files: str | Path | Sequence[str | Path] = "compose.yaml",
    *,
    scope: Scope = "session",
    services: Sequence[str] = (),
    profiles: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    project_name: str | None = None,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    runtime: str | None = None,
    name: str | None = None,
) -> Any:
    """A fixture giving a `StackEnvironment`, up once per `scope` under a project name of its own.

    `files` are relative to the module that calls this (a conftest, usually). `services` limits
    `up` to those services and their dependencies; `profiles` enables profiles; `env` adds
    variables for interpolation over the process environment; `project_name` is the stable part
    of the name (default: the stack file's directory); `runtime` is `native` or `docker`.
    """
    caller = inspect.stack()[1].filename
    base = Path(caller).resolve().parent if caller and not caller.startswith("<") else Path.cwd()
    spec = StackSpec(
        files=resolve_files(files, base), services=tuple(services), profiles=tuple(profiles),
        env=dict(env or {}), project_name=project_name, wait_timeout=wait_timeout, runtime=runtime,
    )

    def environment(request: pytest.FixtureRequest) -> Iterator[StackEnvironment]:
        yield from provide(request.config, spec)

    environment.__doc__ = f"The stack of {', '.join(str(f) for f in spec.files)} ({scope} scope)."
    return pytest.fixture(scope=scope, name=name)(environment)


def provide(config: pytest.Config, spec: StackSpec) -> Iterator[StackEnvironment]:
    """Set-up and tear-down of one environment, shared by `stack_fixture` and the marker.

    Whatever stops set-up half-way (a failed target, Ctrl-C, SIGTERM) removes what `up` created
    before it propagates; a failed set-up fails the test with each culprit's probes and logs.
    """
    state = state_of(config)
    env = StackEnvironment(spec, unique_name(spec.base_name, worker_id()))
    failed: str | None = None
    try:
        env.start()
    except StackFailed as exc:
        failed = f"stackup: {exc.message}\n\n{env.log_report(state.log_lines)}"
        _finish(state, env)
    except BaseException:
        _finish(state, env)
        raise
    if failed is not None:
        pytest.fail(failed, pytrace=False)
    state.live[env.name] = env
    try:
        yield env
    finally:
        state.live.pop(env.name, None)
        _finish(state, env)


def _finish(state: PluginState, env: StackEnvironment) -> None:
    if state.keep:
        state.kept += env.how_to_reach()
        env.detach()
    else:
        env.remove()


def marker_spec(marker: pytest.Mark, base: Path) -> StackSpec:
    """`@pytest.mark.stackup("compose.yaml", services=[...], ...)` as a `StackSpec`: the
    marker's arguments are `stack_fixture`'s, less `scope` and `name` (the fixture is per test)."""
    files: Any = marker.args[0] if marker.args else marker.kwargs.get("files", "compose.yaml")
    known = {"services", "profiles", "env", "project_name", "wait_timeout", "runtime", "files"}
    unknown = sorted(set(marker.kwargs) - known)
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.stackup: unknown argument(s) {', '.join(unknown)}")
    kw = marker.kwargs
    return StackSpec(
        files=resolve_files(files, base), services=tuple(kw.get("services", ())),
        profiles=tuple(kw.get("profiles", ())), env=dict(kw.get("env") or {}),
        project_name=kw.get("project_name"), runtime=kw.get("runtime"),
        wait_timeout=float(kw.get("wait_timeout", DEFAULT_WAIT_TIMEOUT_S)),
    )
