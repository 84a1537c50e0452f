"""Health checks and restart policies on the real engine: busybox containers under runc + conmon.

The engine is opened in-process (state, exit monitor, container manager) and the supervisor is
wired to it exactly as stackupd should: as an exit observer, starting containers through the
container manager, probing through `runc exec`. The fixture removes every container and checks
that no runc container or cgroup is left, even when a test fails. Waits are bounded only to
turn a hang into a failure; nothing asserts on durations.
"""

from __future__ import annotations

import os
import queue
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stackup.runtime.engine.containers import cgroups, conmon
from stackup.runtime.engine.containers.config import default_cgroup_parent
from stackup.runtime.engine.images.testimage import TEST_IMAGE_REF, ensure_busybox_image
from stackup.runtime.engine.service import EngineService
from stackup.runtime.engine.supervision.health import HealthConfig, HealthStatus
from stackup.runtime.engine.supervision.supervisor import Supervisor, runtime_exec_probe
from stackup.runtime.wire.models import ContainerCreate, ExecRequest
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerRecord, ContainerStatus
from stackup.runtime.wire.restart import RestartPolicy

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0 or not Path(conmon.CONMON).exists(), reason="needs root and conmon"),
]

GUARD_S = 30.0


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until `condition` holds; GUARD_S only turns a hang into a failure."""
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@dataclass
class Harness:
    engine: EngineService
    supervisor: Supervisor = field(init=False)
    events: queue.Queue[tuple[str, str]] = field(default_factory=queue.Queue)
    exits: queue.Queue[ContainerRecord] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(
            start_container=self.engine.containers.start,
            exec_probe=runtime_exec_probe(self.engine.paths),
            on_event=self.on_event,
        )
        # The integration seam: the supervisor first, then this recorder, so by the time the
        # recorder sees an exit the supervisor has already decided about it.
        self.engine.containers.exit_observers += [self.supervisor, self]

    def on_event(self, container_id: str, action: str, attributes: Mapping[str, str]) -> None:
        """What stackupd's handler does: persist the count, then publish the event."""
        if action == "restart":
            self.engine.state.update_container(container_id, restart_count=int(attributes["restartCount"]))
        self.events.put((container_id, action))

    def container_exited(self, record: ContainerRecord, *, requested: bool) -> None:
        self.exits.put(record)

    def run(self, *command: str, policy: str = "no", health: HealthConfig | None = None) -> ContainerRecord:
        record = self.engine.containers.create(
            ContainerCreate(name=f"stk-health-{uuid.uuid4().hex[:8]}", image=TEST_IMAGE_REF, command=command)
        )
        record = self.engine.containers.start(record.id)
        self.supervisor.watch(record.id, RestartPolicy.parse(policy), health, started_at=record.started_at)
        return record

    def wait_event(self, container_id: str, action: str) -> None:
        while True:
            got = self.events.get(timeout=GUARD_S)
            if got == (container_id, action):
                return


@pytest.fixture
def harness(stackup_root: Path) -> Iterator[Harness]:
    paths = EnginePaths(stackup_root)
    engine = EngineService.open(paths)
    try:
        ensure_busybox_image(engine.images)
        h = Harness(engine)
        try:
            yield h
        finally:
            h.supervisor.close()
            for record in engine.containers.list_containers():
                engine.containers.remove(record.id, force=True)
    finally:
        engine.close()
        for cid in conmon.list_ids(paths=paths):
            conmon.delete(cid, paths=paths)
        parent = default_cgroup_parent(stackup_root)
        cgroups.remove(parent)
        assert not cgroups.cgroup_dirs(parent)
        assert conmon.list_ids(paths=paths) == []


def test_becomes_healthy_once_the_ready_file_exists(harness: Harness) -> None:
    # A long start period keeps early failures from counting, so it stays `starting` meanwhile.
    check = HealthConfig(
        test=("CMD-SHELL", "test -f /tmp/ready"),
        interval=0.2,
        start_period=600,
        start_interval=0.2,
        timeout=10,
    )
    record = harness.run("sleep", "600", health=check)
    wait_for(lambda: bool(harness.supervisor.health(record.id).log))
    first = harness.supervisor.health(record.id)
    assert first.status is HealthStatus.STARTING
    assert first.log[0].exit_code == 1

    result = harness.engine.containers.exec(record.id, ExecRequest(args=("touch", "/tmp/ready")))
    assert result.exit_code == 0
    harness.wait_event(record.id, "health_status: healthy")
    state = harness.supervisor.health(record.id)
    assert (state.status, state.failing_streak, state.log[-1].exit_code) == (HealthStatus.HEALTHY, 0, 0)


def test_always_failing_probe_turns_unhealthy_after_retries(harness: Harness) -> None:
    check = HealthConfig(test=("CMD", "sh", "-c", "echo nope; exit 3"), interval=0.1, retries=2, timeout=10)
    record = harness.run("sleep", "600", health=check)
    harness.wait_event(record.id, "health_status: unhealthy")
    state = harness.supervisor.health(record.id)
    assert state.status is HealthStatus.UNHEALTHY
    assert state.failing_streak >= 2
    assert {(r.exit_code, r.output) for r in state.log} == {(3, "nope\n")}


def test_a_probe_past_its_timeout_is_killed_and_fails(harness: Harness) -> None:
    check = HealthConfig(test=("CMD", "sleep", "300"), interval=0.1, timeout=0.5, retries=1)
    record = harness.run("sleep", "600", health=check)
    harness.wait_event(record.id, "health_status: unhealthy")
    harness.supervisor.stop_by_user(record.id)
    result = harness.supervisor.health(record.id).log[0]
    assert (result.exit_code, result.output) == (-1, "Health check exceeded timeout (500ms)")
    processes = harness.engine.containers.top(record.id).processes
    assert not [p for p in processes if "300" in p[-1]], processes  # the probe did not linger


def test_on_failure_2_restarts_twice_then_stays_exited(harness: Harness) -> None:
    record = harness.run("sh", "-c", "exit 1", policy="on-failure:2")
    for _ in range(3):
        exited = harness.exits.get(timeout=GUARD_S)
        assert (exited.id, exited.exit_code) == (record.id, 1)
    harness.wait_event(record.id, "restart")
    harness.wait_event(record.id, "restart")  # the second one persists the final count
    final = harness.engine.containers.get(record.id)
    assert final.status is ContainerStatus.EXITED
    assert final.restart_count == harness.supervisor.restart_count(record.id) == 2
    assert harness.exits.empty()
