"""Is the stack where `up` was asked to bring it, and if not, why not.

Each service has a target (`planner.targets`): running, healthy, or completed (exit 0). `wait`
polls the backend until every container in scope reached it, and otherwise raises `StackFailed`
whose `Diagnosis` objects name the blocking chain (`web <- api <- db`), the last health probes and
the log tail: what a person needs to see, gathered here so every front end shows the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stackup.errors import RuntimeFailure, StackFailed
from stackup.runtime import labels as lbl
from stackup.runtime.base import Backend, ContainerInfo, ContainerState, Health, HealthProbe

if TYPE_CHECKING:  # the models cost a third of a `down`'s start-up, and `down` never loads them
    from stackup.spec.models import Project

POLL_S = 0.05
LOG_TAIL = 20
PROBE_TAIL = 3


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Why one container is not where it should be."""

    container: str
    service: str
    chain: str
    what: str
    detail: str
    probes: tuple[HealthProbe, ...] = ()
    log_tail: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        return f"{self.chain} ({self.container} {self.what}: {self.detail})"


def service_containers(backend: Backend, project: str, services: Iterable[str] = ()) -> list[ContainerInfo]:
    """The project's service replicas (no one-off containers), optionally of some services only."""
    wanted = set(services)
    found = [
        c for c in backend.list_containers(project)
        if c.labels.get(lbl.ONEOFF) != lbl.TRUE and (not wanted or c.labels.get(lbl.SERVICE, "") in wanted)
    ]
    return sorted(found, key=lambda c: c.name)


def target_of(project: Project, info: ContainerInfo) -> str:
    from stackup.planner.targets import target

    service = info.labels.get(lbl.SERVICE, "")
    if service not in project.services:
        return "running"
    return str(target(project, service, has_healthcheck=info.health is not Health.NONE))


def reached(target: str, info: ContainerInfo) -> bool | None:
    """True when reached, False to keep waiting, None when it can no longer be reached.

    A container between automatic restarts is still waited for: its policy may bring it up, and
    the timeout bounds the wait. `unhealthy` ends the wait at once, as Compose does, because the
    dependents `up` started are already failing behind it.
    """
    if target == "completed":
        if info.state in (ContainerState.EXITED, ContainerState.DEAD):
            return True if info.exit_code == 0 else None
        return False
    if info.state in (ContainerState.EXITED, ContainerState.DEAD):
        return None
    if target == "healthy":
        if info.health is Health.UNHEALTHY:
            return None
        return info.health is Health.HEALTHY
    return info.state is ContainerState.RUNNING


def wait_scope(project: Project, services: tuple[str, ...], *, no_deps: bool) -> tuple[str, ...]:
    """The services `up --wait` waits for: all, or the named ones and (unless `no_deps`) what
    they depend on, which is exactly what that `up` started."""
    if not services or no_deps:
        return services
    from stackup.planner.graph import dependencies, with_dependencies

    return tuple(sorted(with_dependencies(dependencies(project), services)))


def dependents_chain(project: Project, service: str) -> str:
    """`web <- api <- db`: who waits on `service`."""
    chain = [service]
    current = service
    while True:
        parents = sorted(n for n, s in project.services.items() if current in s.depends_on and n not in chain)
        if not parents:
            break
        chain.insert(0, parents[0])
        current = parents[0]
    return " <- ".join(chain)


def diagnose(backend: Backend, project: Project, info: ContainerInfo, what: str) -> Diagnosis:
    service = info.labels.get(lbl.SERVICE, info.name)
    detail = f"exit code {info.exit_code}" if info.state is ContainerState.EXITED else str(info.health)
    if info.last_probe:
        detail += f'; last probe: "{info.last_probe}"'
    return Diagnosis(
        container=info.name,
        service=service,
        chain=dependents_chain(project, service),
        what=what,
        detail=detail,
        probes=info.health_log[-PROBE_TAIL:],
        log_tail=log_tail(backend, info.id),
    )


def log_tail(backend: Backend, container_id: str, lines: int = LOG_TAIL) -> tuple[str, ...]:
    try:
        return tuple(entry.text for entry in backend.logs(container_id, tail=lines))
    except RuntimeFailure:
        return ()


def wait_ready(
    backend: Backend,
    project: Project,
    services: tuple[str, ...] = (),
    *,
    no_deps: bool = False,
    timeout_s: float = 300.0,
    started: float | None = None,
) -> None:
    """Return once every container in scope reached its target; raise `StackFailed` otherwise.

    `started` (a `time.monotonic()` value) is when `up` began: the timeout bounds the whole `up`,
    dependency waits included, not only this last step.
    """
    containers = service_containers(backend, project.name, wait_scope(project, services, no_deps=no_deps))
    deadline = (time.monotonic() if started is None else started) + timeout_s
    pending = {c.id: target_of(project, c) for c in containers}
    while pending:
        for cid, target in list(pending.items()):
            info = backend.inspect_container(cid)
            state = reached(target, info)
            if state:
                del pending[cid]
            elif state is None:
                found = diagnose(backend, project, info, f"did not become {target}")
                raise StackFailed(found.headline, (found,))
        if pending and time.monotonic() > deadline:
            late = tuple(
                diagnose(backend, project, backend.inspect_container(cid), f"not {goal} after {timeout_s:g}s")
                for cid, goal in pending.items()
            )
            raise StackFailed("\n".join(d.headline for d in late), late)
        if pending:
            time.sleep(POLL_S)
