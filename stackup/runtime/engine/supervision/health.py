"""Health checks with Docker's semantics: a pure state machine and a per-container probe thread.

Why our own: Podman schedules probes with systemd timers and, without systemd as PID 1 (this
machine, most CI runners), runs none at all (runtime-notes §1.5). stackupd is alive anyway, so
it probes like dockerd does (moby `daemon/health.go`), and the numbers are Docker's so a stack
behaves the same under both: interval 30s, timeout 30s, 3 retries, no start period, 5s start
interval; the last 5 results are kept, each with at most 4096 bytes of output.

The rules `HealthState.after` implements:
  - exit 0 resets the failing streak and makes the container `healthy`;
  - any other result (including -1 for a probe that timed out or could not run) adds to the
    streak, except while the container is still `starting` and the probe began inside the start
    period; `retries` consecutive failures make it `unhealthy`;
  - a healthy container stays healthy until `retries` failures in a row, an unhealthy one turns
    healthy again on the first success.
Unhealthy does not restart anything: Docker outside Swarm does not either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stackup.runtime.wire.imageconfig import HealthConfig as OciHealthcheck
from stackup.runtime.wire.records import utcnow
from stackup.units import SECOND, format_duration

log = logging.getLogger("stackupd.health")

DEFAULT_INTERVAL_S = 30.0
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
DEFAULT_START_PERIOD_S = 0.0
DEFAULT_START_INTERVAL_S = 5.0
MAX_LOG_ENTRIES = 5
MAX_OUTPUT_BYTES = 4096
SHELL = ("/bin/sh", "-c")
"""What `CMD-SHELL` runs under; Docker's default for Linux images without a `SHELL`."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")

Clock = Callable[[], datetime]
"""Returns the current (timezone-aware) time; injected so tests control it."""
Sleep = Callable[[float, threading.Event], bool]
"""Waits `seconds` unless the event is set first; returns True if the full time passed."""
ExecProbe = Callable[[Sequence[str], float], tuple[int, str]]
"""Runs `args` in the container with a timeout; returns (exit code, stdout+stderr).

Raises `ProbeTimeout` when the timeout passed (after killing the probe). Any other exception
means the probe could not run and counts as a failure with exit code -1, as in Docker.
"""


def interruptible_sleep(seconds: float, cancelled: threading.Event) -> bool:
    """The real `Sleep`: an event wait, so stopping a checker or a restart needs no polling."""
    return not cancelled.wait(max(seconds, 0.0))


class ProbeTimeout(TimeoutError):
    """Raised by an `ExecProbe` whose process outlived the timeout; carries what it printed."""

    def __init__(self, output: str = "") -> None:
        super().__init__("health check probe timed out")
        self.output = output


class HealthStatus(StrEnum):
    """Docker's health states; `none` is a container without a (enabled) health check."""

    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    NONE = "none"


def _seconds(nanos: int, default: float) -> float:
    """Docker treats a zero duration as "use the default" (moby `timeoutWithDefault`)."""
    return nanos / SECOND if nanos > 0 else default


class HealthConfig(BaseModel):
    """A resolved, enabled health check: `test` in exec form, durations in seconds, defaults applied."""

    model_config = _FROZEN

    test: tuple[str, ...] = Field(min_length=2)
    interval: float = Field(default=DEFAULT_INTERVAL_S, gt=0)
    timeout: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    retries: int = Field(default=DEFAULT_RETRIES, ge=1)
    start_period: float = Field(default=DEFAULT_START_PERIOD_S, ge=0)
    start_interval: float = Field(default=DEFAULT_START_INTERVAL_S, gt=0)

    @field_validator("test")
    @classmethod
    def _runnable(cls, test: tuple[str, ...]) -> tuple[str, ...]:
        """Only runnable forms: a disabled check is `None`, not a config (see `from_oci`)."""
        if test[0] not in ("CMD", "CMD-SHELL"):
            raise ValueError(f'a health check test starts with "CMD" or "CMD-SHELL", not {test[0]!r}')
        return test

    @property
    def probe_args(self) -> tuple[str, ...]:
        """The argv to exec: `CMD a b` runs `a b`; `CMD-SHELL s` runs `/bin/sh -c s`."""
        kind, *rest = self.test
        return (*SHELL, *rest) if kind == "CMD-SHELL" else tuple(rest)

    @classmethod
    def from_oci(cls, check: OciHealthcheck) -> Self | None:
        """From Docker's wire form (image config or API); None when it disables checks."""
        test = check.test
        if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
            return None  # [], ["NONE"], or an unknown kind: Docker runs no probe either
        return cls(
            test=test,
            interval=_seconds(check.interval, DEFAULT_INTERVAL_S),
            timeout=_seconds(check.timeout, DEFAULT_TIMEOUT_S),
            retries=check.retries if check.retries > 0 else DEFAULT_RETRIES,
            start_period=_seconds(check.start_period, DEFAULT_START_PERIOD_S),
            start_interval=_seconds(check.start_interval, DEFAULT_START_INTERVAL_S),
        )

    @classmethod
    def merged(cls, own: OciHealthcheck | None, image: OciHealthcheck | None) -> Self | None:
        """The container's own check (Docker's wire form, as the API carries it) over the image's.

        The only translation of a check the engine has: a client sends the wire form (the
        native runtime's `healthcheck_request` makes it from the planner's `HealthcheckSpec`).

        Docker's merge (moby `daemon/commit.go`): an unset test or zero field falls back to the
        image's value; `disable: true` (test `["NONE"]`) turns the image's check off too.
        """
        if own is None:
            return cls.from_oci(image) if image is not None else None
        return cls.from_oci(own.over(image) if image is not None else own)


def cap_output(text: str) -> str:
    """At most `MAX_OUTPUT_BYTES` of UTF-8, with "..." when cut, as Docker's `limitedBuffer`."""
    data = text.encode()
    if len(data) <= MAX_OUTPUT_BYTES:
        return text
    return data[:MAX_OUTPUT_BYTES].decode(errors="ignore") + "..."


class ProbeResult(BaseModel):
    """One probe run, as `inspect` shows it under `State.Health.Log`."""

    model_config = _FROZEN

    start: datetime
    end: datetime
    exit_code: int
    output: str = Field(default="", max_length=MAX_OUTPUT_BYTES + 3)

    @classmethod
    def capped(cls, start: datetime, end: datetime, exit_code: int, output: str) -> Self:
        return cls(start=start, end=end, exit_code=exit_code, output=cap_output(output))

    @classmethod
    def timed_out(cls, start: datetime, end: datetime, timeout: float, output: str = "") -> Self:
        """Docker's message for a probe killed at its timeout, e.g. `... timeout (30s)`."""
        message = f"Health check exceeded timeout ({format_duration(round(timeout * SECOND))})"
        return cls.capped(start, end, -1, f"{message}: {output}" if output else message)


class HealthState(BaseModel):
    """Where a container's health stands; a value, so each probe yields a new one."""

    model_config = _FROZEN

    status: HealthStatus = HealthStatus.STARTING
    failing_streak: int = Field(default=0, ge=0)
    log: tuple[ProbeResult, ...] = ()

    def after(self, probe: ProbeResult, config: HealthConfig, started_at: datetime) -> HealthState:
        """The state once `probe` has finished, for a container started at `started_at`."""
        log_ = (*self.log, probe)[-MAX_LOG_ENTRIES:]
        if probe.exit_code == 0:
            return HealthState(status=HealthStatus.HEALTHY, failing_streak=0, log=log_)
        in_grace = (
            self.status is HealthStatus.STARTING
            and (probe.start - started_at).total_seconds() < config.start_period
        )
        if in_grace:
            return self.model_copy(update={"log": log_})
        streak = self.failing_streak + 1
        status = HealthStatus.UNHEALTHY if streak >= config.retries else self.status
        return HealthState(status=status, failing_streak=streak, log=log_)

    def restarted(self) -> HealthState:
        """A fresh start of the same container: `starting` again, the log kept (moby)."""
        return HealthState(status=HealthStatus.STARTING, failing_streak=0, log=self.log)


NO_HEALTH = HealthState(status=HealthStatus.NONE)
"""The state of a container that has no health check."""


def next_probe_delay(
    state: HealthState, config: HealthConfig, *, now: datetime, started_at: datetime
) -> float:
    """Seconds until the next probe, counted from the end of the last one (or from the start).

    While the start period lasts and no probe has succeeded, probes come every `start_interval`
    so a quick service is seen healthy quickly; otherwise every `interval` (Docker 25+).
    """
    in_start_period = (now - started_at).total_seconds() < config.start_period
    if in_start_period and state.status is HealthStatus.STARTING:
        return config.start_interval
    return config.interval


class HealthChecker:
    """Probes one running container on its own thread until stopped.

    `on_change(state)` is called (on the checker's thread, no lock held) whenever a probe changes
    the status, so the engine can record it and emit Docker's `health_status: <status>` event.
    A probe still running when `stop` is called finishes, but its result is dropped.
    """

    def __init__(
        self,
        config: HealthConfig,
        exec_probe: ExecProbe,
        on_change: Callable[[HealthState], None],
        *,
        started_at: datetime,
        initial: HealthState | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = interruptible_sleep,
        name: str = "health",
    ) -> None:
        self.config = config
        self.started_at = started_at
        self._exec = exec_probe
        self._on_change = on_change
        self._clock = clock
        self._sleep = sleep
        self._state = initial or HealthState()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def state(self) -> HealthState:
        with self._lock:
            return self._state

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop probing; waits for the thread unless called from it (or `timeout` is 0)."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread() and timeout != 0:
            self._thread.join(timeout)

    def probe_once(self) -> HealthState:
        """Run one probe now and fold its result into the state; returns the new state."""
        start = self._clock()
        try:
            exit_code, output = self._exec(self.config.probe_args, self.config.timeout)
            result = ProbeResult.capped(start, self._clock(), exit_code, output)
        except ProbeTimeout as exc:
            result = ProbeResult.timed_out(start, self._clock(), self.config.timeout, exc.output)
        except Exception as exc:  # a probe that cannot run is a failed probe, never a dead thread
            log.warning("health probe could not run: %s", exc)
            result = ProbeResult.capped(start, self._clock(), -1, str(exc))
        with self._lock:
            if self._stopped.is_set():
                return self._state
            before, self._state = self._state, self._state.after(result, self.config, self.started_at)
            after = self._state
        if after.status is not before.status:
            self._on_change(after)
        return after

    def _run(self) -> None:
        while True:
            delay = next_probe_delay(self.state, self.config, now=self._clock(), started_at=self.started_at)
            if not self._sleep(delay, self._stopped) or self._stopped.is_set():
                return
            self.probe_once()
