"""`execute` against the stateful FakeRuntime: order, conditions, failure chains, parallelism."""

from __future__ import annotations

import threading
from typing import Any

from stackup.planner.execute import execute
from stackup.planner.reporter import EventKind, EventLog
from stackup.planner.teardown import plan_down
from stackup.runtime.base import ContainerSpec
from stackup.runtime.fake import Behaviour, FakeRuntime
from tests.planner._build import NO_WAIT, fake_with_images, observed, plan_for, project, up

HEALTHCHECK = {"test": ["CMD", "true"]}


def dep(condition: str = "service_started", **extra: Any) -> dict[str, Any]:
    return {"condition": condition, **extra}


def chain_stack() -> dict[str, dict[str, Any]]:
    """web -> api (healthy) -> db (healthy); migrate must complete before api; cache stands alone."""
    return {
        "db": {"image": "img", "healthcheck": HEALTHCHECK},
        "migrate": {"image": "img", "depends_on": {"db": dep("service_healthy")}},
        "api": {
            "image": "img",
            "healthcheck": HEALTHCHECK,
            "depends_on": {
                "db": dep("service_healthy"),
                "migrate": dep("service_completed_successfully"),
            },
        },
        "web": {"image": "img", "depends_on": {"api": dep("service_healthy")}},
        "cache": {"image": "img"},
    }


def chain_fake() -> FakeRuntime:
    fake = fake_with_images("img")
    fake.behave("migrate", Behaviour(exit_code=0, exit_after=1))
    return fake


def index(fake: FakeRuntime, verb: str, name: str) -> int:
    return fake.timeline.index((verb, f"demo-{name}-1"))


def test_start_order_respects_every_edge_and_condition() -> None:
    fake = fake_with_images("img")
    fake.behave("db", Behaviour(healthy_after=3))
    fake.behave("migrate", Behaviour(exit_code=0, exit_after=2))
    fake.behave("api", Behaviour(healthy_after=2))
    up(project(chain_stack()), fake)
    # every dependent starts only after its dependency met the condition it asked for
    assert index(fake, "healthy", "db") < index(fake, "start", "migrate")
    assert index(fake, "healthy", "db") < index(fake, "start", "api")
    assert index(fake, "exit", "migrate") < index(fake, "start", "api")
    assert index(fake, "healthy", "api") < index(fake, "start", "web")
    assert set(fake.started()) == {f"demo-{s}-1" for s in chain_stack()}


def test_failed_dependency_names_the_chain_and_every_blocked_service() -> None:
    fake = chain_fake()
    fake.behave("db", Behaviour(unhealthy_after=2, probe="connection refused\n"))
    log = EventLog()
    outcome = execute(plan_for(project(chain_stack()), fake), fake, log, wait=NO_WAIT)
    assert not outcome.ok
    assert {k: str(v) for k, v in outcome.skipped.items()} == {
        "service:migrate-1": 'migrate <- db (unhealthy: last probe "connection refused")',
        "service:api-1": 'api <- db (unhealthy: last probe "connection refused")',
        "service:web-1": 'web <- api <- db (unhealthy: last probe "connection refused")',
    }
    assert "demo-cache-1" in fake.started()  # an unrelated branch is not held up
    assert {e.resource for e in log.of_kind(EventKind.SKIPPED)} == set(outcome.skipped)


def test_failed_one_shot_job_blocks_its_dependent() -> None:
    fake = fake_with_images("img")
    fake.behave("migrate", Behaviour(exit_code=3, exit_after=1))
    outcome = execute(plan_for(project(chain_stack()), fake), fake, wait=NO_WAIT)
    assert str(outcome.skipped["service:web-1"]) == "web <- api <- migrate (exited with code 3)"
    assert "demo-api-1" not in fake.started()


def test_start_failure_is_an_operation_failure() -> None:
    fake = chain_fake()
    fake.behave("db", Behaviour(fail_start="exec: no such file"))
    outcome = execute(plan_for(project(chain_stack()), fake), fake, wait=NO_WAIT)
    assert str(outcome.failed["service:db-1"]) == "db: demo-db-1: exec: no such file"
    assert str(outcome.skipped["service:web-1"]) == "web <- api <- db (demo-db-1: exec: no such file)"


def test_optional_dependency_failure_only_warns() -> None:
    fake = fake_with_images("img")
    fake.behave("db", Behaviour(fail_start="boom"))
    stack = {"db": {"image": "img"}, "web": {"image": "img", "depends_on": {"db": dep(required=False)}}}
    log = EventLog()
    outcome = execute(plan_for(project(stack), fake), fake, log, wait=NO_WAIT)
    assert "demo-web-1" in fake.started()
    assert list(outcome.failed) == ["service:db-1"] and not outcome.skipped
    assert [e.message for e in log.of_kind(EventKind.WARNING)] == [
        "web: optional dependency failed: db: demo-db-1: boom"
    ]


def wide_stack(n: int) -> dict[str, dict[str, Any]]:
    return {f"s{i}": {"image": "img"} for i in range(n)}


def test_independent_branches_overlap() -> None:
    """Two starts that can only complete together (a barrier) prove they ran at the same time."""
    fake = fake_with_images("img")
    meet = threading.Barrier(2)
    fake.behave("s0", Behaviour(rendezvous=meet))
    fake.behave("s1", Behaviour(rendezvous=meet))
    up(project(wide_stack(2)), fake)
    assert fake.max_in_flight >= 2


def test_parallel_one_serialises_in_plan_order() -> None:
    fake = fake_with_images("img")
    plan = plan_for(project(wide_stack(6)), fake)
    execute(plan, fake, parallel=1, wait=NO_WAIT).raise_for_failures()
    assert fake.max_in_flight == 1
    assert fake.started() == [f"demo-s{i}-1" for i in range(6)]


def test_down_removes_dependents_first_then_the_network() -> None:
    fake = chain_fake()
    up(project(chain_stack()), fake)
    outcome = execute(plan_down(observed(fake)), fake, wait=NO_WAIT)
    assert outcome.ok
    stopped = [name for verb, name in fake.timeline if verb == "stop"]
    assert stopped.index("demo-web-1") < stopped.index("demo-api-1") < stopped.index("demo-db-1")
    for name in stopped:  # each container is removed after its own stop
        assert fake.timeline.index(("stop", name)) < fake.timeline.index(("remove", name))
    removed = [name for verb, name in fake.timeline if verb.startswith("remove")]
    assert removed[-1] == "demo_default"
    assert not fake.containers and not fake.networks


class _SlowWebRemoval(FakeRuntime):
    """Removing web blocks until db has been stopped: down must not wait for a dependent's
    removal (unmount, network teardown) before stopping its dependencies."""

    def __init__(self) -> None:
        super().__init__()
        self.db_stopped = threading.Event()

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None:
        name = self._get(container_id).info.name
        super().stop_container(container_id, timeout_s)
        if name == "demo-db-1":
            self.db_stopped.set()

    def remove_container(self, container_id: str) -> None:
        if self._get(container_id).info.name == "demo-web-1" and not self.db_stopped.wait(10):
            raise AssertionError("db was not stopped while web was being removed")
        super().remove_container(container_id)


def test_down_stops_a_dependency_while_its_dependent_is_still_being_removed() -> None:
    fake = _SlowWebRemoval()
    fake.add_image("img", "sha256:" + "1" * 64)
    up(project({"db": {"image": "img"}, "web": {"image": "img", "depends_on": {"db": dep()}}}), fake)
    outcome = execute(plan_down(observed(fake)), fake, wait=NO_WAIT)
    outcome.raise_for_failures()
    assert fake.timeline.index(("stop", "demo-web-1")) < fake.timeline.index(("stop", "demo-db-1"))
    assert not fake.containers and not fake.networks


def gated_stack() -> dict[str, dict[str, Any]]:
    """api waits for web, web for a healthy db."""
    return {
        "db": {"image": "img", "healthcheck": HEALTHCHECK},
        "web": {"image": "img", "container_name": "taken", "depends_on": {"db": dep("service_healthy")}},
        "api": {"image": "img", "depends_on": {"web": dep()}},
    }


def test_a_gated_replica_is_created_while_it_waits_and_never_started_when_the_gate_fails() -> None:
    """Only the start waits for the gate: a failed gate leaves the replica created, not started."""
    fake = fake_with_images("img")
    fake.behave("db", Behaviour(unhealthy_after=1, probe="refused"))
    log = EventLog()
    outcome = execute(plan_for(project(gated_stack()), fake), fake, log, wait=NO_WAIT)
    assert ("create", "taken") in fake.timeline and "taken" not in fake.started()
    assert str(outcome.skipped["service:web-1"]) == 'web <- db (unhealthy: last probe "refused")'
    assert str(outcome.skipped["service:api-1"]) == 'api <- web <- db (unhealthy: last probe "refused")'
    assert not outcome.failed
    assert [e.resource for e in log.of_kind(EventKind.SKIPPED)].count("service:web-1") == 1


def test_a_failed_early_create_is_its_operations_failure_reported_once() -> None:
    fake = fake_with_images("img")
    fake.create_container(ContainerSpec(name="taken", image="img"))  # not the project's: a clash
    log = EventLog()
    outcome = execute(plan_for(project(gated_stack()), fake), fake, log, wait=NO_WAIT)
    assert list(outcome.failed) == ["service:web-1"]
    assert "already in use" in str(outcome.failed["service:web-1"])
    assert list(outcome.skipped) == ["service:api-1"]
    assert str(outcome.skipped["service:api-1"]).startswith("api <- web (")
    assert [e.resource for e in log.of_kind(EventKind.FAILED)] == ["service:web-1"]
    assert [e.resource for e in log.of_kind(EventKind.SKIPPED)] == ["service:api-1"]
