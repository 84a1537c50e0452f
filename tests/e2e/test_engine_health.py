"""Health checks and restart policies end to end: the supervisor inside `stackupd`, driven only
through the API, with no CLI running while it probes and restarts.

Intervals are shortened (200 ms) so tests are quick; waits are bounded only to turn a hang into
a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.runtime import labels
from stackup.runtime.base import ContainerSpec, HealthcheckSpec
from stackup.runtime.engine.containers import conmon
from stackup.runtime.engine.images.testimage import build_busybox_rootfs
from stackup.runtime.native.launcher import ensure_engine, stop_engine
from stackup.runtime.native.runtime import NativeRuntime
from stackup.runtime.wire.imageconfig import HealthConfig
from stackup.runtime.wire.records import ContainerStatus, EventType
from tests.e2e._engine import Engine, running_engine, wait_for

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0 or not Path(conmon.CONMON).exists(), reason="needs root and conmon"),
]

FAST = 200_000_000
"""200 ms in Docker's nanoseconds."""
READY_LATER = "sleep 1; touch /tmp/ready; exec sleep 300"


@pytest.fixture
def engine(stackup_root: Path) -> Iterator[Engine]:
    with running_engine(stackup_root) as made:
        yield made


def _status(engine: Engine, ref: str) -> str:
    health = engine.client.inspect_container(ref).health or {}
    return str(health.get("status", "none"))


def test_healthcheck_turns_healthy_and_keeps_probe_output(engine: Engine) -> None:
    check = HealthConfig(test=("CMD-SHELL", "test -f /tmp/ready && echo ready"), interval=FAST, retries=2)
    record = engine.run("checked", "sh", "-c", READY_LATER, healthcheck=check)
    assert _status(engine, record.id) == "starting"
    wait_for(lambda: _status(engine, record.id) == "healthy", "healthy")

    health = engine.client.inspect_container(record.id).health
    assert health is not None and health["failing_streak"] == 0
    assert health["log"][-1]["output"].strip() == "ready"
    listed = {r.id: r.health for r in engine.client.list_containers()}
    assert (listed[record.id] or {}).get("status") == "healthy"
    actions = [
        e.action
        for e in engine.client.events(since_id=0, type_=EventType.CONTAINER, follow=False)
        if e.actor == record.id
    ]
    assert "health_status: healthy" in actions


def test_on_failure_2_is_restarted_twice_by_the_engine(engine: Engine) -> None:
    record = engine.run("crashy", "sh", "-c", "exit 3", restart="on-failure:2")

    def settled() -> bool:
        current = engine.client.inspect_container(record.id)
        return current.status is ContainerStatus.EXITED and current.restart_count == 2

    wait_for(settled, "two restarts, then exited")
    final = engine.client.inspect_container(record.id)
    assert (final.exit_code, final.restart) == (3, "on-failure:2")
    restarts = [
        e
        for e in engine.client.events(since_id=0, follow=False)
        if e.actor == record.id and e.action == "restart"
    ]
    assert [e.attributes["restartCount"] for e in restarts] == ["1", "2"]


def test_user_stop_is_never_undone(engine: Engine) -> None:
    record = engine.run("steady", "sleep", "300", restart="always")
    engine.client.stop_container(record.id, timeout_s=0)
    stopped = engine.client.inspect_container(record.id)
    assert stopped.manually_stopped and stopped.status is ContainerStatus.EXITED
    engine.client.start_container(record.id)
    assert not engine.client.inspect_container(record.id).manually_stopped


def test_image_healthcheck_inherited_or_disabled(engine: Engine, tmp_path: Path) -> None:
    image = f"stackup-test/checked-{engine.token}:latest"
    rootfs = build_busybox_rootfs(tmp_path / "rootfs")
    engine.client.import_image(
        rootfs,
        image,
        config={"Cmd": ["sh"], "Healthcheck": {"Test": ["CMD", "true"], "Interval": 3600 * 10**9}},
    )
    runtime = NativeRuntime(engine.client)
    project = f"p{engine.token}"

    def run(service: str, check: HealthcheckSpec) -> str:
        info = runtime.create_container(
            ContainerSpec(
                name=engine.name(service),
                image=image,
                labels={labels.PROJECT: project, labels.SERVICE: service},
                command=("sleep", "300"),
                healthcheck=check,
            )
        )
        runtime.start_container(info.id)
        return info.id

    inherits = run("inherits", HealthcheckSpec(interval_s=0.2))
    disabled = run("disabled", HealthcheckSpec(test=("NONE",)))
    wait_for(lambda: _status(engine, inherits) == "healthy", "the image's test, at the service's interval")
    assert engine.client.inspect_container(inherits).healthcheck == HealthConfig(
        test=("CMD", "true"), interval=FAST
    )
    assert _status(engine, disabled) == "none"


def test_restarted_engine_readopts_and_restarts_what_died_meanwhile(engine: Engine) -> None:
    record = engine.run("survivor", "sleep", "300", restart="always")
    engine.client.close()
    stop_engine(engine.paths)
    conmon.kill(record.id, 9, paths=engine.paths)  # dies while no engine watches
    engine.client = ensure_engine(engine.paths)

    def restarted() -> bool:
        current = engine.client.inspect_container(record.id)
        return current.status is ContainerStatus.RUNNING and current.restart_count == 1

    wait_for(restarted, "the restart policy applied to an exit seen at re-adoption")
