"""Health checks without containers: config resolution, the state machine, the probe thread.

Time is a fake clock that only moves when a test (or the fake sleep) moves it, so nothing here
depends on how fast the machine is.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.supervision.health import (
    HealthChecker,
    HealthConfig,
    HealthState,
    HealthStatus,
    ProbeResult,
    ProbeTimeout,
    cap_output,
    next_probe_delay,
)
from stackup.runtime.wire.imageconfig import HealthConfig as OciHealthcheck

T0 = datetime(2026, 1, 1, tzinfo=UTC)
S = 1_000_000_000  # one second in nanoseconds


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def probe(start: float, exit_code: int, output: str = "") -> ProbeResult:
    return ProbeResult(start=at(start), end=at(start + 0.01), exit_code=exit_code, output=output)


CHECK = HealthConfig(test=("CMD", "true"))


# -- configuration ----------------------------------------------------------------------------


def test_docker_defaults() -> None:
    assert (CHECK.interval, CHECK.timeout, CHECK.retries, CHECK.start_period, CHECK.start_interval) == (
        30.0, 30.0, 3, 0.0, 5.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("test", "argv"),
    [
        (("CMD", "curl", "-f", "http://localhost"), ("curl", "-f", "http://localhost")),
        (("CMD-SHELL", "test -f /tmp/ready"), ("/bin/sh", "-c", "test -f /tmp/ready")),
    ],
)
def test_probe_args(test: tuple[str, ...], argv: tuple[str, ...]) -> None:
    assert HealthConfig(test=test).probe_args == argv


@pytest.mark.parametrize("test", [("NONE", "x"), ("CMD",)])
def test_only_runnable_tests_make_a_config(test: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"health check test|at least 2"):
        HealthConfig(test=test)


def test_from_oci_converts_nanoseconds_and_fills_zeros_with_defaults() -> None:
    oci = OciHealthcheck(test=("CMD-SHELL", "true"), interval=2 * S, start_period=S // 2, retries=0)
    assert HealthConfig.from_oci(oci) == HealthConfig(
        test=("CMD-SHELL", "true"), interval=2.0, start_period=0.5, retries=3
    )


@pytest.mark.parametrize("test", [(), ("NONE",), ("CMD",), ("BOGUS", "x")])
def test_from_oci_without_a_runnable_test_disables(test: tuple[str, ...]) -> None:
    assert HealthConfig.from_oci(OciHealthcheck(test=test)) is None


def test_image_healthcheck_from_wire_json() -> None:
    wire = {"Test": ["CMD", "pg_isready"], "Interval": 10 * S, "Timeout": 3 * S, "Retries": 5}
    resolved = HealthConfig.merged(None, OciHealthcheck.model_validate(wire))
    assert resolved == HealthConfig(test=("CMD", "pg_isready"), interval=10.0, timeout=3.0, retries=5)


def own(**fields: object) -> OciHealthcheck:
    """A container's own check as a client sends it (zero durations = inherit the image's)."""
    return OciHealthcheck.model_validate(fields)


IMAGE = OciHealthcheck(test=("CMD", "image-check"), interval=7 * S, timeout=2 * S, retries=4)


@pytest.mark.parametrize(
    ("service", "image", "expected"),
    [
        (None, None, None),
        (None, IMAGE, HealthConfig(test=("CMD", "image-check"), interval=7, timeout=2, retries=4)),
        (
            own(test=["CMD-SHELL", "mine"], interval=1 * S),
            None,
            HealthConfig(test=("CMD-SHELL", "mine"), interval=1),
        ),
        # Docker's merge: the service's fields win, unset ones come from the image.
        (
            own(interval=1 * S, start_period=60 * S),
            IMAGE,
            HealthConfig(test=("CMD", "image-check"), interval=1, timeout=2, retries=4, start_period=60),
        ),
        (
            own(test=["CMD", "mine"], retries=2),
            IMAGE,
            HealthConfig(test=("CMD", "mine"), interval=7, timeout=2, retries=2),
        ),
        (own(test=["NONE"]), IMAGE, None),
    ],
)
def test_merged(
    service: OciHealthcheck | None, image: OciHealthcheck | None, expected: HealthConfig | None
) -> None:
    assert HealthConfig.merged(service, image) == expected


# -- the state machine ------------------------------------------------------------------------


def run(
    config: HealthConfig, probes: Sequence[ProbeResult], state: HealthState | None = None
) -> list[HealthState]:
    states = []
    current = state or HealthState()
    for result in probes:
        current = current.after(result, config, started_at=T0)
        states.append(current)
    return states


@pytest.mark.parametrize(
    ("config", "exits", "expected"),
    [
        (CHECK, [0], [("healthy", 0)]),
        (CHECK, [1, 1, 1], [("starting", 1), ("starting", 2), ("unhealthy", 3)]),
        (CHECK, [1, 0, 1], [("starting", 1), ("healthy", 0), ("healthy", 1)]),
        (
            CHECK,
            [0, 1, 1, 1, 0],
            [("healthy", 0), ("healthy", 1), ("healthy", 2), ("unhealthy", 3), ("healthy", 0)],
        ),
        (CHECK, [2, 137], [("starting", 1), ("starting", 2)]),  # any non-zero exit fails
        (CHECK.model_copy(update={"retries": 1}), [1], [("unhealthy", 1)]),
        (CHECK, [1, 1, 1, 1], [("starting", 1), ("starting", 2), ("unhealthy", 3), ("unhealthy", 4)]),
    ],
)
def test_transitions(config: HealthConfig, exits: list[int], expected: list[tuple[str, int]]) -> None:
    states = run(config, [probe(i, code) for i, code in enumerate(exits)])
    assert [(s.status.value, s.failing_streak) for s in states] == expected


def test_failures_inside_the_start_period_do_not_count() -> None:
    config = HealthConfig(test=("CMD", "x"), start_period=10, retries=1)
    states = run(config, [probe(1, 1), probe(9.9, 1), probe(10, 1)])
    assert [(s.status.value, s.failing_streak) for s in states] == [
        ("starting", 0), ("starting", 0), ("unhealthy", 1),
    ]  # fmt: skip
    assert len(states[-1].log) == 3  # uncounted failures are still logged


def test_start_period_grace_ends_with_the_first_success() -> None:
    config = HealthConfig(test=("CMD", "x"), start_period=10, retries=1)
    states = run(config, [probe(1, 0), probe(2, 1)])
    assert [s.status for s in states] == [HealthStatus.HEALTHY, HealthStatus.UNHEALTHY]


def test_log_keeps_the_last_five() -> None:
    states = run(CHECK, [probe(i, i % 2) for i in range(7)])
    assert [r.start for r in states[-1].log] == [at(i) for i in range(2, 7)]


def test_restarted_goes_back_to_starting_and_keeps_the_log() -> None:
    unhealthy = run(CHECK, [probe(0, 1)] * 3)[-1]
    again = unhealthy.restarted()
    assert (again.status, again.failing_streak, again.log) == (HealthStatus.STARTING, 0, unhealthy.log)


@pytest.mark.parametrize(
    ("timeout", "output", "message"),
    [
        (30.0, "", "Health check exceeded timeout (30s)"),
        (1.5, "", "Health check exceeded timeout (1.5s)"),
        (0.5, "partial", "Health check exceeded timeout (500ms): partial"),
    ],
)
def test_timeout_result(timeout: float, output: str, message: str) -> None:
    result = ProbeResult.timed_out(at(0), at(timeout), timeout, output)
    assert (result.exit_code, result.output) == (-1, message)


def test_output_is_capped_like_docker() -> None:
    assert cap_output("x" * 4096) == "x" * 4096
    assert cap_output("x" * 5000) == "x" * 4096 + "..."
    assert cap_output("é" * 4096).endswith("é...")  # never a broken character
    assert len(cap_output("é" * 4096).encode()) <= 4096 + 3


@pytest.mark.parametrize(
    ("config", "status", "now", "delay"),
    [
        (CHECK, HealthStatus.STARTING, 0, 30.0),  # no start period: interval from the start
        (HealthConfig(test=("CMD", "x"), start_period=60), HealthStatus.STARTING, 1, 5.0),
        (HealthConfig(test=("CMD", "x"), start_period=60, start_interval=1), HealthStatus.STARTING, 59, 1.0),
        (HealthConfig(test=("CMD", "x"), start_period=60), HealthStatus.HEALTHY, 1, 30.0),
        (HealthConfig(test=("CMD", "x"), start_period=60), HealthStatus.STARTING, 60, 30.0),
    ],
)
def test_next_probe_delay(config: HealthConfig, status: HealthStatus, now: float, delay: float) -> None:
    state = HealthState(status=status)
    assert next_probe_delay(state, config, now=at(now), started_at=T0) == delay


# -- the checker ------------------------------------------------------------------------------


@dataclass
class FakeTime:
    """A clock that moves 10 ms per reading and by the full amount on each sleep.

    After `sleeps` sleeps it stops time: the next sleep waits until the checker is stopped.
    """

    now: datetime = T0
    sleeps: int = 1_000_000
    slept: list[float] = field(default_factory=list)
    parked: threading.Event = field(default_factory=threading.Event)

    def clock(self) -> datetime:
        self.now += timedelta(milliseconds=10)
        return self.now

    def sleep(self, seconds: float, cancelled: threading.Event) -> bool:
        if len(self.slept) >= self.sleeps:
            self.parked.set()
            cancelled.wait()
            return False
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        return not cancelled.is_set()


@dataclass
class ScriptedProbe:
    """Answers each probe from a script: an (exit, output) pair, or an exception to raise."""

    script: list[tuple[int, str] | Exception]
    calls: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def __call__(self, args: Sequence[str], timeout: float) -> tuple[int, str]:
        self.calls.append((tuple(args), timeout))
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        return step


def make_checker(
    script: list[tuple[int, str] | Exception], config: HealthConfig = CHECK, time: FakeTime | None = None
) -> tuple[HealthChecker, ScriptedProbe, list[HealthState]]:
    time = time or FakeTime()
    fake = ScriptedProbe(script)
    changes: list[HealthState] = []
    checker = HealthChecker(config, fake, changes.append, started_at=T0, clock=time.clock, sleep=time.sleep)
    return checker, fake, changes


def test_probe_once_runs_the_argv_with_the_timeout_and_reports_changes_only() -> None:
    checker, fake, changes = make_checker(
        [(1, "no"), (0, "ok"), (0, "ok")], HealthConfig(test=("CMD-SHELL", "t"))
    )
    for _ in range(3):
        checker.probe_once()
    assert fake.calls == [(("/bin/sh", "-c", "t"), 30.0)] * 3
    assert [s.status for s in changes] == [HealthStatus.HEALTHY]
    assert [r.output for r in checker.state.log] == ["no", "ok", "ok"]


def test_a_timeout_and_a_broken_probe_are_failures_with_exit_minus_one() -> None:
    config = HealthConfig(test=("CMD", "x"), timeout=2, retries=2)
    checker, _, changes = make_checker(
        [ProbeTimeout("half"), RuntimeFailure("container is not running")], config
    )
    checker.probe_once()
    state = checker.probe_once()
    assert [(r.exit_code, r.output) for r in state.log] == [
        (-1, "Health check exceeded timeout (2s): half"),
        (-1, "container is not running"),
    ]
    assert [s.status for s in changes] == [HealthStatus.UNHEALTHY]


def test_the_thread_probes_after_each_delay_until_stopped() -> None:
    config = HealthConfig(test=("CMD", "x"), start_period=60, start_interval=1, interval=30)
    time = FakeTime(sleeps=3)
    checker, fake, changes = make_checker([(1, ""), (0, ""), (0, "")], config, time)
    checker.start()
    try:
        assert time.parked.wait(10), "the checker never reached its fourth sleep"
    finally:
        checker.stop(timeout=10)
    assert len(fake.calls) == len(checker.state.log) == 3
    # starting inside the start period: start_interval; healthy: interval.
    assert time.slept == [1.0, 1.0, 30.0]
    assert [s.status for s in changes] == [HealthStatus.HEALTHY]


def test_a_result_arriving_after_stop_is_dropped() -> None:
    checker, _, changes = make_checker([(0, "")])
    checker.stop()
    assert checker.probe_once() == HealthState()
    assert changes == []
