"""The Swarm service specs of one-shot jobs and of stacks deployed without the routing mesh (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackup.deploy.notes import Notes
from stackup.deploy.swarm_spec import Refs, SwarmOptions, check_service, jobs, service_spec

STACK = """\
name: spec
services:
  migrate:
    image: app
    depends_on: {db: {condition: service_healthy}}
  seed:
    image: app
    restart: "no"
    deploy: {mode: replicated-job, update_config: {parallelism: 1}}
  again:
    image: app
    restart: always
  db:
    image: db
  app:
    image: app
    ports: ["127.0.0.1:8000:8000", {target: 9000, published: "9000", mode: ingress}]
    depends_on:
      migrate: {condition: service_completed_successfully}
      again: {condition: service_completed_successfully}
      db: {condition: service_healthy}
    deploy: {endpoint_mode: vip}
"""


Specs = dict[str, dict[str, Any]]


def _render(loader: Any, tmp_path: Path, options: SwarmOptions) -> tuple[Specs, list[str]]:
    path = tmp_path / "compose.yaml"
    path.write_text(STACK)
    loaded = loader(path)
    project, notes = loaded.project, Notes(loaded.source_map, "swarm")
    one_shots = jobs(project)
    specs = {}
    for name, service in sorted(project.services.items()):
        check_service(notes, name, service, one_shots)
        specs[name] = service_spec(project.name, name, service, env={}, refs=Refs({}, {}, {}), volumes={},
                                   notes=notes, job=name in one_shots, options=options)
    return specs, [str(p) for p in notes.sorted()]


def test_one_shots_become_jobs_retried_on_failure_without_update_config(loader: Any, tmp_path: Path) -> None:
    specs, warnings = _render(loader, tmp_path, SwarmOptions())
    assert specs["migrate"]["mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert specs["migrate"]["task_template"]["RestartPolicy"]["Condition"] == "on-failure"
    assert specs["seed"]["task_template"]["RestartPolicy"]["Condition"] == "none"  # as the file says
    assert specs["seed"]["update_config"] is None
    assert specs["again"]["task_template"]["RestartPolicy"]["Condition"] == "on-failure"
    assert specs["app"]["mode"] == {"replicated": {"Replicas": 1}}
    assert specs["db"]["task_template"].get("RestartPolicy") is None
    joined = "\n".join(warnings)
    assert "services.app.depends_on.migrate: Swarm has no start order: migrate runs as a job" in joined
    assert "services.app.depends_on.db: Swarm has no start order; left out" in joined
    assert "services.again.restart: a Swarm job is not restarted after it succeeds; on-failure" in joined
    assert "services.seed.deploy.update_config: a Swarm job is rerun, not rolled; left out" in joined
    assert "services.app.ports[0]: Swarm publishes on every address of the node; host_ip 127.0.0.1" in joined


def test_with_the_routing_mesh_ports_and_endpoints_are_as_written(loader: Any, tmp_path: Path) -> None:
    specs, _ = _render(loader, tmp_path, SwarmOptions())
    endpoint = specs["app"]["endpoint_spec"]
    assert endpoint["Mode"] == "vip"
    assert [p["PublishMode"] for p in endpoint["Ports"]] == ["ingress", "ingress"]


def test_without_the_routing_mesh_dnsrr_and_host_ports(loader: Any, tmp_path: Path) -> None:
    specs, warnings = _render(loader, tmp_path, SwarmOptions(routing_mesh=False))
    modes = {name: spec["endpoint_spec"]["Mode"] for name, spec in specs.items()}
    assert modes == dict.fromkeys(specs, "dnsrr")
    ports = specs["app"]["endpoint_spec"]["Ports"]
    assert [(p["PublishMode"], p["PublishedPort"], p["TargetPort"]) for p in ports] == [
        ("host", 8000, 8000), ("host", 9000, 9000)]
    assert any("services.app.deploy.endpoint_mode: without the routing mesh there are no virtual IPs; "
               "dnsrr, not vip" in w for w in warnings)
