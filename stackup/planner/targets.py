"""Each service's target state: what "up" means for it (running, healthy, or completed).

Compose only knows a one-shot job finished when some service waits for it with
`service_completed_successfully` (docker/compose#10596), so `up --wait` fails on a migration that
exited 0 unless a dummy service adopts it. stackup states the target per service: a job is a
service marked `x-stackup.job: true` or awaited with `service_completed_successfully`; its
target is "exited 0", and a job that reached it is not re-run by a no-op `up`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from stackup.spec.kinds import DependsCondition

if TYPE_CHECKING:
    from stackup.spec.models import Project

EXTENSION = "x-stackup"


class Target(StrEnum):
    RUNNING = "running"
    HEALTHY = "healthy"
    COMPLETED = "completed"


def is_job(project: Project, service: str) -> bool:
    """True for a one-shot service (see the module docstring)."""
    ext = project.services[service].extensions.get(EXTENSION) or {}
    if isinstance(ext, dict) and ext.get("job") is True:
        return True
    return any(
        dep.condition is DependsCondition.COMPLETED_SUCCESSFULLY
        for other in project.services.values()
        for name, dep in other.depends_on.items()
        if name == service
    )


def target(project: Project, service: str, *, has_healthcheck: bool) -> Target:
    if is_job(project, service):
        return Target.COMPLETED
    return Target.HEALTHY if has_healthcheck else Target.RUNNING
