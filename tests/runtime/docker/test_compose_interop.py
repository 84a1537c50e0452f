"""Docker Compose and stackup on the same daemon, in both directions.

- A stack `docker-compose up -d` started is adopted: stackup's plan for the same stack file has no
  changes (every container setting Compose records is read back and compared, see
  `planner/adoption.py` for the few it cannot record), a changed value is planned as a recreate of
  that service naming the field, and the teardown plan removes everything Compose made.
- A stack stackup started is listed by `docker-compose ps` and removed by `docker-compose down`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackup.planner.conditions import WaitPolicy
from stackup.planner.execute import execute
from stackup.planner.observed import observe
from stackup.planner.plan import OpKind
from stackup.planner.reconcile import reconcile
from stackup.planner.teardown import DownOptions, plan_down
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker._docker import IMAGE, compose, load_stack, options_for

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed"),
]

STACK = f"""
services:
  db:
    image: {IMAGE}
    init: true
    command: ["sleep", "600"]
    user: "1000:1000"
    working_dir: /tmp
    hostname: dbhost
    labels: {{tier: data}}
    healthcheck:
      test: ["CMD-SHELL", "true"]
      interval: 1s
      timeout: 2s
      retries: 5
      start_period: 1s
    networks:
      back:
        aliases: [database]
        ipv4_address: 10.233.91.20
    mem_limit: 64m
    cpus: 0.5
    pids_limit: 40
    restart: on-failure:2
    stop_signal: SIGUSR1
  web:
    image: {IMAGE}
    entrypoint: ["/bin/sh", "-c"]
    command: ["sleep 600"]
    environment: [A=1, B=two words]
    ports: ["127.0.0.1::80", "81"]
    volumes: ["data:/data", "/anon", "./conf:/conf:ro"]
    tmpfs: [/scratch]
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    extra_hosts: ["db.local:10.1.2.3"]
    dns: [10.0.0.53]
    sysctls: {{net.ipv4.ip_unprivileged_port_start: "0"}}
    tty: true
    stdin_open: true
    read_only: true
    restart: unless-stopped
    networks: [default, back]
    depends_on: [db]
  side:
    image: {IMAGE}
    init: true
    command: ["sleep", "600"]
    network_mode: "service:web"
    healthcheck:
      disable: true
networks:
  back:
    ipam:
      config: [{{subnet: 10.233.91.0/24}}]
volumes:
  data: {{}}
"""


@pytest.mark.docker_only(
    "Podman's inspect reports its own defaults (PATH/TERM/container/HOSTNAME in the environment, "
    "default capability drops, pids limit 2048, tmpfs mounts of read_only, numeric stop signals, "
    'NetworkMode "bridge"), which the read-back does not subtract: adoption is calibrated on Docker'
)
def test_compose_stack_is_adopted_then_removed(
    docker_rt: DockerRuntime, project_name: str, tmp_path: Path
) -> None:
    directory = tmp_path / project_name
    loaded = load_stack(directory, project_name, STACK)
    (directory / "conf").mkdir()
    compose("up", "-d", cwd=directory, project=project_name)

    seen = observe(docker_rt, project_name)
    assert sorted(c.service for c in seen.containers) == ["db", "side", "web"]
    assert all(c.name == f"{project_name}_{c.service}_1" for c in seen.containers)  # Compose 1.x names
    plan = reconcile(loaded.project, seen, options_for(loaded))
    assert not plan.has_changes, str(plan)
    assert str(plan).count("(up to date)") == 3 and str(plan).count("(exists)") == 3

    changed = load_stack(
        directory,
        project_name,
        STACK.replace("tier: data", "tier: store").replace("pids_limit: 40", "pids_limit: 41"),
    )
    plan = reconcile(changed.project, observe(docker_rt, project_name), options_for(changed))
    text = str(plan)
    assert 'labels.tier: "data" -> "store"' in text and "limits.pids: 40 -> 41" in text, text
    assert {op.name: op.kind for op in plan if op.kind is not OpKind.NOTHING} == {"db-1": OpKind.RECREATE}

    down = plan_down(observe(docker_rt, project_name), DownOptions(volumes=True))
    execute(down, docker_rt).raise_for_failures()
    after = observe(docker_rt, project_name)
    assert after.containers == ()
    assert not [n for n in after.networks.values() if n.project == project_name]
    assert not [v for v in after.volumes.values() if v.project == project_name]
    assert compose("ps", "-q", cwd=directory, project=project_name).stdout.strip() == ""


def test_stackup_stack_is_listed_and_removed_by_compose(
    docker_rt: DockerRuntime, project_name: str, tmp_path: Path
) -> None:
    stack = f"""
services:
  web:
    image: {IMAGE}
    init: true
    command: ["sleep", "600"]
    deploy: {{replicas: 2}}
  job:
    image: {IMAGE}
    command: ["true"]
"""
    directory = tmp_path / project_name
    loaded = load_stack(directory, project_name, stack)
    plan = reconcile(loaded.project, observe(docker_rt, project_name), options_for(loaded))
    execute(plan, docker_rt, wait=WaitPolicy(interval_s=0.2, timeout_s=60)).raise_for_failures()

    listed = compose("ps", cwd=directory, project=project_name).stdout
    for name in (f"{project_name}-web-1", f"{project_name}-web-2", f"{project_name}-job-1"):
        assert name in listed, listed
    assert "Up" in listed and "Exit 0" in listed
    services = compose("ps", "--services", cwd=directory, project=project_name).stdout.split()
    assert sorted(services) == ["job", "web"]

    compose("down", cwd=directory, project=project_name)
    after = observe(docker_rt, project_name)
    assert after.containers == ()
    assert not [n for n in after.networks.values() if n.project == project_name]
