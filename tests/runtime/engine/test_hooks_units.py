"""Lifecycle hooks without a container: the service's hooks to the engine's request and record,
and the runner's order, failure and event rules (the real `runc exec` is covered end to end in
tests/e2e/test_cli_orchestration.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.planner.specs import _hooks
from stackup.runtime import labels
from stackup.runtime.base import ContainerSpec, HookSpec
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.engine.supervision import hooks as hooks_module
from stackup.runtime.engine.supervision.hooks import PRE_STOP_MIN_S, HookKind, HookResult, HookRunner
from stackup.runtime.native.runtime import create_request
from stackup.runtime.wire.models import ContainerCreate, ContainerHooks, Hook
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerRecord, event_attributes
from stackup.spec.models_parts import ServiceHook


def test_service_hooks_become_specs_without_unresolved_variables_or_empty_commands() -> None:
    hook = {"user": "nobody", "privileged": True, "working_dir": "/data"}
    written = [
        ServiceHook(command=["sh", "-c", "echo hi"], environment={"A": "1", "UNSET": None}, **hook),
        ServiceHook(command=None),
    ]
    assert _hooks(written) == (HookSpec(command=("sh", "-c", "echo hi"), environment={"A": "1"}, **hook),)


def test_create_request_carries_hooks_in_the_engines_words() -> None:
    spec = ContainerSpec(
        name="web",
        image="img",
        post_start=(HookSpec(command=("touch", "/ready"), environment={"A": "1"}),),
        pre_stop=(HookSpec(command=("sh", "-c", "drain"), user="app", working_dir="/srv"),),
    )
    request = ContainerCreate.model_validate(create_request(spec))
    assert request.hooks == ContainerHooks(
        post_start=(Hook(command=("touch", "/ready"), env={"A": "1"}),),
        pre_stop=(Hook(command=("sh", "-c", "drain"), user="app", cwd="/srv"),),
    )


def test_hooks_survive_the_state_database(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    try:
        hooks = ContainerHooks(pre_stop=(Hook(command=("true",), privileged=True),))
        store.insert_container(ContainerRecord(id="c1", name="web", hooks=hooks))
        assert store.get_container("c1").hooks == hooks
    finally:
        store.close()


def test_container_events_carry_identity_labels_only() -> None:
    record = ContainerRecord(
        id="c1",
        name="shop-web-1",
        labels={labels.PROJECT: "shop", labels.SERVICE: "web", labels.CONFIG: "{...big...}"},
    )
    assert event_attributes(record, {"exitCode": "0"}) == {
        labels.PROJECT: "shop", labels.SERVICE: "web", "name": "shop-web-1", "exitCode": "0",
    }  # fmt: skip


class Recorder:
    """Stands in for `run_hook` (scripted exit codes) and for the event bus."""

    def __init__(self, codes: list[int | None]) -> None:
        self.codes = codes
        self.ran: list[tuple[HookKind, tuple[str, ...], float]] = []
        self.events: list[tuple[str, dict[str, str]]] = []

    def run_hook(
        self, paths: EnginePaths, container_id: str, kind: HookKind, hook: Hook, timeout_s: float
    ) -> HookResult:
        self.ran.append((kind, hook.command, timeout_s))
        code = self.codes.pop(0)
        return HookResult(kind, hook, code, "" if code == 0 else "nope\n")

    def publish(self, record: ContainerRecord, action: str, attributes: Mapping[str, str]) -> None:
        self.events.append((action, dict(attributes)))


def _runner(monkeypatch: pytest.MonkeyPatch, codes: list[int | None]) -> tuple[HookRunner, Recorder]:
    recorder = Recorder(codes)
    monkeypatch.setattr(hooks_module, "run_hook", recorder.run_hook)
    return HookRunner(EnginePaths(root=Path("/nonexistent")), recorder.publish), recorder


HOOKS = ContainerHooks(
    post_start=(Hook(command=("first",)), Hook(command=("second",)), Hook(command=("third",))),
    pre_stop=(Hook(command=("drain",)),),
)
RECORD = ContainerRecord(id="c1", name="shop-web-1", hooks=HOOKS)


def test_post_start_stops_at_the_first_failure_and_a_users_start_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner, recorder = _runner(monkeypatch, [0, 3])
    with pytest.raises(RuntimeFailure) as caught:
        runner.post_start_or_raise(RECORD)
    assert str(caught.value) == "post_start hook `second` of container shop-web-1 failed: exit code 3: nope"
    assert [command for _, command, _ in recorder.ran] == [("first",), ("second",)]
    assert recorder.events == [
        ("hook", {"hook": "post_start", "exitCode": "0"}),
        ("hook-failed", {"hook": "post_start", "exitCode": "3", "output": "nope"}),
    ]


def test_an_automatic_start_only_reports_a_failed_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    runner, _ = _runner(monkeypatch, [None])
    failed = runner.post_start(RECORD)
    assert failed is not None and "did not finish" in failed.describe(RECORD.name)


def test_pre_stop_gets_the_grace_period_with_a_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    runner, recorder = _runner(monkeypatch, [0, 1])
    assert runner.pre_stop(RECORD, 30.0) is None
    assert runner.pre_stop(RECORD, 0.0) is not None  # reported, never raised: the stop goes on
    assert [timeout for _, _, timeout in recorder.ran] == [30.0, PRE_STOP_MIN_S]
