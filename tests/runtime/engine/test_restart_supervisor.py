"""The supervisor with fake containers: restart scheduling, cancellation, health wiring.

Restart timers and probe threads are real threads, but they sleep through a fake that returns
at once (recording the delay) or parks until cancelled, so outcomes never depend on timing.
Waits below only guard against a hang; nothing asserts how long anything took.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.supervision.health import HealthConfig, HealthStatus
from stackup.runtime.engine.supervision.supervisor import Supervisor
from stackup.runtime.wire.records import ContainerRecord, ContainerStatus
from stackup.runtime.wire.restart import RestartPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GUARD_S = 10.0
"""How long a test waits for a thread before declaring a hang."""


@dataclass
class FakeEngine:
    """Stands in for the engine: counts starts, collects events, controls time."""

    park: bool = False
    """If set, every sleep parks until cancelled (time stands still)."""
    fail_start: bool = False
    now: datetime = T0
    slept: list[float] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    events: queue.Queue[tuple[str, str, dict[str, str]]] = field(default_factory=queue.Queue)
    sleep_returned: queue.Queue[bool] = field(default_factory=queue.Queue)
    probes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    probe_exit: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clock(self) -> datetime:
        with self.lock:
            return self.now

    def sleep(self, seconds: float, cancelled: threading.Event) -> bool:
        if self.park:
            cancelled.wait()
            self.sleep_returned.put(False)
            return False
        with self.lock:
            self.slept.append(seconds)
            self.now += timedelta(seconds=seconds)
        return not cancelled.is_set()

    def start(self, container_id: str) -> None:
        if self.fail_start:
            raise RuntimeFailure("runc create failed: no such image layer")
        self.started.append(container_id)

    def exec_probe(self, container_id: str, args: Sequence[str], timeout: float) -> tuple[int, str]:
        self.probes.append((container_id, tuple(args)))
        return self.probe_exit, ""

    def on_event(self, container_id: str, action: str, attributes: Mapping[str, str]) -> None:
        self.events.put((container_id, action, dict(attributes)))

    def next_event(self) -> tuple[str, str, dict[str, str]]:
        return self.events.get(timeout=GUARD_S)

    def supervisor(self) -> Supervisor:
        return Supervisor(self.start, self.exec_probe, self.on_event, self.clock, sleep=self.sleep)


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def supervisor(fake: FakeEngine) -> Iterator[Supervisor]:
    sup = fake.supervisor()
    yield sup
    sup.close()


def test_on_failure_2_restarts_twice_with_backoff_then_gives_up(
    fake: FakeEngine, supervisor: Supervisor
) -> None:
    supervisor.watch("c1", RestartPolicy.parse("on-failure:2"), None)
    for expected_count in (1, 2):
        assert supervisor.on_exit("c1", 1, ran_for=0.5) is True
        assert fake.next_event() == ("c1", "restart", {"restartCount": str(expected_count)})
    assert supervisor.on_exit("c1", 1, ran_for=0.5) is False
    assert fake.started == ["c1", "c1"]
    assert fake.slept == [0.1, 0.2]
    assert supervisor.restart_count("c1") == 2


def test_success_is_not_a_failure(fake: FakeEngine, supervisor: Supervisor) -> None:
    supervisor.watch("c1", RestartPolicy.parse("on-failure"), None)
    assert supervisor.on_exit("c1", 0, ran_for=1) is False
    assert supervisor.restart_count("c1") == 0


def test_a_long_run_resets_the_backoff(fake: FakeEngine, supervisor: Supervisor) -> None:
    supervisor.watch("c1", RestartPolicy.parse("always"), None)
    for ran_for in (1, 1, 30):
        assert supervisor.on_exit("c1", 0, ran_for=ran_for)
        fake.next_event()
    assert fake.slept == [0.1, 0.2, 0.1]


def test_a_requested_exit_is_not_restarted(fake: FakeEngine, supervisor: Supervisor) -> None:
    supervisor.watch("c1", RestartPolicy.parse("always"), None)
    assert supervisor.on_exit("c1", 137, ran_for=1, requested=True) is False
    assert fake.started == []


def test_stop_by_user_cancels_a_pending_restart(fake: FakeEngine, supervisor: Supervisor) -> None:
    fake.park = True
    supervisor.watch("c1", RestartPolicy.parse("always"), None)
    assert supervisor.on_exit("c1", 1, ran_for=1) is True
    supervisor.stop_by_user("c1")
    assert fake.sleep_returned.get(timeout=GUARD_S) is False
    assert fake.started == []
    assert supervisor.on_exit("c1", 1, ran_for=1) is False  # still stopped by the user


def test_watch_again_resets_the_count_and_the_user_stop(fake: FakeEngine, supervisor: Supervisor) -> None:
    supervisor.watch("c1", RestartPolicy.parse("on-failure:1"), None)
    supervisor.on_exit("c1", 1, ran_for=0)
    fake.next_event()
    supervisor.stop_by_user("c1")
    supervisor.watch("c1", RestartPolicy.parse("on-failure:1"), None)  # the user starts it again
    assert supervisor.restart_count("c1") == 0
    assert supervisor.on_exit("c1", 1, ran_for=0) is True


def test_readoption_keeps_the_recorded_count(fake: FakeEngine, supervisor: Supervisor) -> None:
    supervisor.watch("c1", RestartPolicy.parse("on-failure:2"), None, restart_count=2)
    assert supervisor.on_exit("c1", 1, ran_for=0) is False


def test_unwatched_and_forgotten_containers_are_ignored(fake: FakeEngine, supervisor: Supervisor) -> None:
    assert supervisor.on_exit("nobody", 1, ran_for=0) is False
    supervisor.watch("c1", RestartPolicy.parse("always"), None)
    supervisor.forget("c1")
    assert supervisor.on_exit("c1", 1, ran_for=0) is False
    assert supervisor.health("c1").status is HealthStatus.NONE


def test_a_failed_restart_is_reported_and_left_exited(fake: FakeEngine, supervisor: Supervisor) -> None:
    fake.fail_start = True
    supervisor.watch("c1", RestartPolicy.parse("always"), None)
    supervisor.on_exit("c1", 1, ran_for=0)
    assert fake.next_event() == ("c1", "restart-failed", {"error": "runc create failed: no such image layer"})


def test_container_exited_observer_uses_the_record(fake: FakeEngine, supervisor: Supervisor) -> None:
    supervisor.watch("c1", RestartPolicy.parse("on-failure"), None)
    record = ContainerRecord(
        id="c1",
        name="web",
        status=ContainerStatus.EXITED,
        exit_code=3,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=20),
    )
    supervisor.container_exited(record, requested=False)
    assert fake.next_event() == ("c1", "restart", {"restartCount": "1"})
    assert fake.slept == [0.1]


def test_health_is_probed_and_reported(fake: FakeEngine, supervisor: Supervisor) -> None:
    check = HealthConfig(test=("CMD", "check"), retries=1)
    assert supervisor.health("c1").status is HealthStatus.NONE
    fake.probe_exit = 1
    supervisor.watch("c1", RestartPolicy.parse("no"), check)
    assert fake.next_event() == ("c1", "health_status: unhealthy", {})
    fake.probe_exit = 0
    assert fake.next_event() == ("c1", "health_status: healthy", {})
    assert fake.probes[0] == ("c1", ("check",))
    supervisor.stop_by_user("c1")
    state = supervisor.health("c1")
    assert state.status is HealthStatus.HEALTHY  # the last status stays visible after a stop


def test_no_health_check_means_status_none(fake: FakeEngine, supervisor: Supervisor) -> None:
    supervisor.watch("c1", RestartPolicy.parse("no"), None)
    assert supervisor.health("c1").status is HealthStatus.NONE
    assert fake.probes == []
