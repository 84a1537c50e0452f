"""The planner end to end over DockerRuntime: load a stack, observe, reconcile, execute, as `up`
does; health checks and `depends_on` conditions, `--wait`, a no-op second plan, a change planned
down to the field, and `down` leaving nothing of the project behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.planner.conditions import WaitPolicy
from stackup.planner.execute import execute
from stackup.planner.observed import observe
from stackup.planner.plan import OpKind
from stackup.planner.reconcile import reconcile
from stackup.planner.teardown import DownOptions, plan_down
from stackup.runtime.base import ContainerState, Health
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker._docker import IMAGE, load_stack, options_for

pytestmark = pytest.mark.docker

HEALTH = "Podman runs health checks from systemd timers, which this machine lacks"
POLL = WaitPolicy(interval_s=0.2, timeout_s=60)

STACK = f"""
services:
  db:
    image: {IMAGE}
    init: true
    command: ["sh", "-c", "sleep 1; echo ok > /tmp/ready; exec sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "cat /tmp/ready"]
      interval: 300ms
      retries: 30
  migrate:
    image: {IMAGE}
    command: ["sh", "-c", "echo migrated"]
    depends_on:
      db: {{condition: service_healthy}}
  web:
    image: {IMAGE}
    init: true
    command: ["sleep", "600"]
    environment:
      MODE: "${{MODE:-one}}"
    ports: ["127.0.0.1::80"]
    volumes: ["data:/data"]
    networks: [default, back]
    depends_on:
      db: {{condition: service_healthy}}
      migrate: {{condition: service_completed_successfully}}
networks:
  back: {{}}
volumes:
  data: {{}}
"""


def up(rt: DockerRuntime, directory: Path, project: str, text: str = STACK) -> tuple[object, object]:
    loaded = load_stack(directory, project, text)
    plan = reconcile(loaded.project, observe(rt, project), options_for(loaded))
    outcome = execute(plan, rt, wait=POLL)
    return plan, outcome


@pytest.mark.docker_only(HEALTH)
def test_up_noop_change_and_down(docker_rt: DockerRuntime, project_name: str, tmp_path: Path) -> None:
    _plan, outcome = up(docker_rt, tmp_path / project_name, project_name)
    outcome.raise_for_failures()  # type: ignore[attr-defined]
    seen = observe(docker_rt, project_name)
    by = {c.service: docker_rt.inspect_container(c.id) for c in seen.containers}
    assert by["db"].health is Health.HEALTHY
    assert (by["migrate"].state, by["migrate"].exit_code) == (ContainerState.EXITED, 0)
    assert by["web"].state is ContainerState.RUNNING
    # the conditions held: web started only after migrate finished, migrate after db was healthy
    assert by["migrate"].finished_at is not None and by["web"].started_at is not None
    assert by["web"].started_at > by["migrate"].finished_at
    assert set(by["web"].addresses) == {f"{project_name}_default", f"{project_name}_back"}
    assert [p.host_ip for p in by["web"].ports] == ["127.0.0.1"]
    assert {f"{project_name}_default", f"{project_name}_back"} <= set(seen.networks)
    assert seen.volumes[f"{project_name}_data"].project == project_name

    # `up --wait`: every service at its target (running, healthy, completed)
    from stackup.api import readiness

    loaded = load_stack(tmp_path / project_name, project_name, STACK)
    readiness.wait_ready(docker_rt, loaded.project, (), no_deps=False, timeout_s=30)

    # a second `up` has nothing to do
    again = reconcile(loaded.project, observe(docker_rt, project_name), options_for(loaded))
    assert not again.has_changes, str(again)

    # a changed value is planned as a recreate of that service only, naming the field
    changed = load_stack(tmp_path / project_name, project_name, STACK.replace("${MODE:-one}", "two"))
    plan2 = reconcile(changed.project, observe(docker_rt, project_name), options_for(changed))
    assert 'environment.MODE: "one" -> "two"' in str(plan2)
    kinds = {op.name: op.kind for op in plan2 if op.kind is not OpKind.NOTHING}
    assert kinds == {"web-1": OpKind.RECREATE}
    execute(plan2, docker_rt, wait=POLL).raise_for_failures()
    assert not reconcile(changed.project, observe(docker_rt, project_name), options_for(changed)).has_changes

    # down removes every container, the networks and (with -v) the volume
    down = plan_down(observe(docker_rt, project_name), DownOptions(volumes=True))
    execute(down, docker_rt).raise_for_failures()
    after = observe(docker_rt, project_name)
    assert after.containers == ()
    assert not [n for n in after.networks.values() if n.project == project_name]
    assert not [v for v in after.volumes.values() if v.project == project_name]


@pytest.mark.docker_only(HEALTH)
def test_unhealthy_dependency_blocks_dependents(
    docker_rt: DockerRuntime, project_name: str, tmp_path: Path
) -> None:
    stack = f"""
services:
  db:
    image: {IMAGE}
    init: true
    command: ["sleep", "600"]
    healthcheck:
      test: ["CMD-SHELL", "echo db-not-ready; exit 1"]
      interval: 200ms
      retries: 2
  web:
    image: {IMAGE}
    init: true
    command: ["sleep", "600"]
    depends_on:
      db: {{condition: service_healthy}}
"""
    _plan, outcome = up(docker_rt, tmp_path / project_name, project_name, stack)
    assert not outcome.ok  # type: ignore[attr-defined]
    with pytest.raises(Exception, match=r'unhealthy: last probe "db-not-ready"'):
        outcome.raise_for_failures()  # type: ignore[attr-defined]
    seen = {c.service: c for c in observe(docker_rt, project_name).containers}
    assert seen["web"].state is ContainerState.CREATED  # created early, never started
    db = docker_rt.inspect_container(seen["db"].id)
    assert (db.health, db.last_probe) == (Health.UNHEALTHY, "db-not-ready")


def test_scale_and_service_network_mode(docker_rt: DockerRuntime, project_name: str, tmp_path: Path) -> None:
    stack = f"""
services:
  app:
    image: {IMAGE}
    init: true
    command: ["sleep", "600"]
    deploy: {{replicas: 3}}
  side:
    image: {IMAGE}
    init: true
    command: ["sleep", "600"]
    network_mode: "service:app"
"""
    _plan, outcome = up(docker_rt, tmp_path / project_name, project_name, stack)
    outcome.raise_for_failures()  # type: ignore[attr-defined]
    seen = observe(docker_rt, project_name)
    loaded = load_stack(tmp_path / project_name, project_name, stack)
    again = reconcile(loaded.project, seen, options_for(loaded))
    assert not again.has_changes, str(again)
    assert sorted((c.service, c.number) for c in seen.containers) == [
        ("app", 1),
        ("app", 2),
        ("app", 3),
        ("side", 1),
    ]
    side = next(c for c in seen.containers if c.service == "side")
    mode = docker_rt.api.inspect_container(side.id)["HostConfig"]["NetworkMode"]
    assert mode.startswith("container:") and mode.removeprefix("container:") in {
        c.id for c in seen.containers if c.service == "app"
    }
    execute(plan_down(observe(docker_rt, project_name)), docker_rt).raise_for_failures()
    assert observe(docker_rt, project_name).containers == ()
