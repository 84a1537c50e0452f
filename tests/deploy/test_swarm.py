"""A real Swarm deployment end to end on a single-node swarm of Debian's docker.io.

A web server (busybox httpd) and a client service: the client reaches `web` by service name,
the host reaches it through its published port on 127.0.0.1, the client is scaled, a changed
environment value is rolled out, and removal leaves nothing carrying the stack's label.

This machine's kernel has no IPVS, which Swarm's routing mesh (ingress-mode ports) and virtual
IPs need, so the stack uses `endpoint_mode: dnsrr` (the name resolves to the tasks' addresses)
and a host-mode published port; the ingress/VIP paths are rendered but not exercised here.
If the daemon was not in a swarm, the test makes it one and leaves the swarm at the end.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from stackup.deploy.swarm import SwarmDeploy, remove_stack, scale_service
from stackup.deploy.swarm_spec import NAMESPACE_LABEL

IMAGE = "stackup-bench/busybox:latest"

STACK = """\
name: {name}
services:
  web:
    image: {image}
    command:
      - /bin/sh
      - -c
      - mkdir -p /www && echo $$GREETING > /www/index.html && exec httpd -f -p 80 -h /www
    environment:
      GREETING: {greeting}
    ports: [{{target: 80, published: "{port}", mode: host}}]
    deploy:
      endpoint_mode: dnsrr
      update_config: {{parallelism: 1, order: stop-first}}
  client:
    image: {image}
    command: [/bin/sleep, "3600"]
    secrets: [token]
    deploy: {{endpoint_mode: dnsrr}}
secrets:
  token:
    environment: TOKEN
"""


@pytest.fixture(autouse=True)
def _busybox(tool: Any) -> None:
    tool("docker", "docker", "image", "inspect", IMAGE)


@pytest.fixture
def stack(swarm: docker.DockerClient) -> Iterator[str]:
    name = f"sw{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        remove_stack(swarm, name, volumes=True)


def _deploy(client: docker.DockerClient, loader: Any, tmp_path: Path, name: str, port: int,
            greeting: str) -> list[str]:
    path = tmp_path / "compose.yaml"
    path.write_text(STACK.format(name=name, image=IMAGE, greeting=greeting, port=port))
    loaded = loader(path, {"TOKEN": "s3cret"})
    run = SwarmDeploy(client, loaded.project, loaded.source_map, loaded.environment, loaded.referenced_files)
    actions = run.run(timeout=120)
    assert [str(w) for w in run.warnings] == []
    return actions


def _containers(client: docker.DockerClient, name: str, service: str) -> list[Any]:
    found: list[Any] = client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={name}_{service}", "status": "running"})
    return found


def _wget(container: Any, url: str) -> str:
    """From inside a task; busybox `wget -T` crashes, so `timeout` bounds it."""
    deadline = time.monotonic() + 30
    while True:
        code, out = container.exec_run(["/bin/busybox", "timeout", "5", "/bin/wget", "-qO-", url])
        if code == 0 or time.monotonic() > deadline:
            assert code == 0, out
            text: str = out.decode()
            return text
        time.sleep(0.5)


def _get(url: str, expected: str) -> str:
    deadline = time.monotonic() + 30
    body = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read().decode()
            if body == expected:
                break
        except OSError as err:
            body = str(err)
        time.sleep(0.3)
    return body


def test_deploy_reach_scale_update_remove(swarm: docker.DockerClient, stack: str, loader: Any,
                                          tmp_path: Path, port: int) -> None:
    actions = _deploy(swarm, loader, tmp_path, stack, port, "one")
    assert actions[0] == f"create network {stack}_default"
    assert f"create service {stack}_web" in actions and f"create service {stack}_client" in actions
    assert any(a.startswith(f"create secret {stack}_token_") for a in actions)

    (client,) = _containers(swarm, stack, "client")
    assert _wget(client, "http://web:80/") == "one\n"  # by service name, over the overlay network
    assert _get(f"http://127.0.0.1:{port}/", "one\n") == "one\n"  # published, from the host
    code, secret = client.exec_run(["/bin/cat", "/run/secrets/token"])
    assert (code, secret) == (0, b"s3cret")

    assert _deploy(swarm, loader, tmp_path, stack, port, "one") == []  # unchanged: nothing to do

    (old_web,) = _containers(swarm, stack, "web")
    assert _deploy(swarm, loader, tmp_path, stack, port, "two") == [f"update service {stack}_web"]
    service = swarm.services.get(f"{stack}_web")
    assert service.attrs["UpdateStatus"]["State"] == "completed"  # rolled out, task by task
    (new_web,) = _containers(swarm, stack, "web")
    assert new_web.id != old_web.id
    assert _get(f"http://127.0.0.1:{port}/", "two\n") == "two\n"
    assert _wget(client, "http://web:80/") == "two\n"

    scale_service(swarm, stack, "client", 3)
    clients = _containers(swarm, stack, "client")
    assert len(clients) == 3
    assert {_wget(c, "http://web:80/") for c in clients} == {"two\n"}

    removed = remove_stack(swarm, stack)
    assert f"service {stack}_web" in removed and f"network {stack}_default" in removed
    label = {"label": f"{NAMESPACE_LABEL}={stack}"}
    assert swarm.services.list(filters=label) == []
    assert swarm.networks.list(filters=label) == []
    assert swarm.secrets.list(filters=label) == [] and swarm.configs.list(filters=label) == []
    assert swarm.containers.list(all=True, sparse=True, filters=label) == []
    assert swarm.volumes.list(filters=label) == []
