"""Waiting for a dependency to reach its `depends_on` condition, by polling the runtime.

`service_started` is met as soon as the dependency's operations are done. `service_healthy` waits
for every replica to report healthy and fails at once on "unhealthy", on a container that exited,
or on a service without a health check (waiting would never end). `service_completed_successfully`
waits for every replica to exit and requires exit code 0. Failures say what was seen, including the
last probe's output, because "container db is unhealthy" alone sends users looking in the wrong
place (Compose #6625).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import assert_never

from stackup.errors import OperationFailed
from stackup.runtime.base import ContainerInfo, ContainerState, Health, Runtime
from stackup.spec.kinds import DependsCondition

_STOPPED = (ContainerState.EXITED, ContainerState.DEAD)


@dataclass(frozen=True, slots=True)
class WaitPolicy:
    """How often to poll and for how long; `sleep` is injectable so tests never sleep."""

    interval_s: float = 0.5
    timeout_s: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)


def wait_for(
    runtime: Runtime,
    service: str,
    containers: Sequence[str],
    condition: DependsCondition,
    policy: WaitPolicy,
) -> None:
    """Return when every container of `service` meets `condition`; raise `OperationFailed` if none can."""
    if condition is DependsCondition.STARTED or not containers:
        return
    deadline = policy.clock() + policy.timeout_s
    pending = list(containers)
    while True:
        pending = [cid for cid in pending if not _met(runtime.inspect_container(cid), service, condition)]
        if not pending:
            return
        if policy.clock() >= deadline:
            want = "healthy" if condition is DependsCondition.HEALTHY else "completed"
            raise OperationFailed(service, f"not {want} after {policy.timeout_s:g}s")
        policy.sleep(policy.interval_s)


def _met(info: ContainerInfo, service: str, condition: DependsCondition) -> bool:
    """True when met, False to keep waiting; raises when it can no longer be met."""
    match condition:
        case DependsCondition.STARTED:
            return True
        case DependsCondition.HEALTHY:
            match info.health:
                case Health.HEALTHY:
                    return True
                case Health.UNHEALTHY:
                    probe = f': last probe "{info.last_probe.strip()}"' if info.last_probe else ""
                    raise OperationFailed(service, f"unhealthy{probe}")
                case Health.NONE:
                    raise OperationFailed(service, "has no healthcheck; service_healthy can never be met")
                case Health.STARTING:
                    if info.state in _STOPPED:
                        raise OperationFailed(service, f"exited with code {info.exit_code} before healthy")
                    return False
                case _:
                    assert_never(info.health)
        case DependsCondition.COMPLETED_SUCCESSFULLY:
            if info.state not in _STOPPED:
                return False
            if info.exit_code != 0:
                raise OperationFailed(service, f"exited with code {info.exit_code}")
            return True
        case _:
            assert_never(condition)
