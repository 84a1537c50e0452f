"""The webapp example on a real single-node swarm of Debian's docker.io, through the CLI.

Its images (PostgreSQL, Redis, the Python app and its migration job) are built by stackup FROM
debian:bookworm once per module and moved into Docker the way a user would (`stackup image save |
docker load`); they are removed from Docker at the end. `stackup deploy --target swarm` runs the
stack: the migration as a Swarm job that retries until PostgreSQL answers, the app next to it
(Swarm has no start order; the test polls the page until the job's note shows). An override file
adds what a deployment adds, not what the example lacks: `deploy.replicas` for the app and a
`probe` service to reach the app by name from another service.

This kernel has no IPVS, so `--no-routing-mesh`: dnsrr endpoints and host-mode ports. With host
mode two tasks on one node cannot share a host port, so the example runs with `WEBAPP_PORT=`
(each task publishes an ephemeral port, read from the task's status).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import ImageNotFound

from stackup.deploy.swarm import remove_stack
from stackup.deploy.swarm_spec import NAMESPACE_LABEL
from tests.deploy._cli import REPO, cli_env, stackup
from tests.deploy.conftest import require_tool
from tests.engineroot import private_engine

pytestmark = pytest.mark.engine

COMPOSE = REPO / "examples" / "webapp" / "compose.yaml"
SERVICES = ("db", "cache", "migrate", "app")
BUILD_TIMEOUT_S = 1800.0
DEADLINE_S = 180.0  # the app answers once PostgreSQL, Redis and the migration job are done

OVERRIDE = """\
services:
  app:
    deploy:
      replicas: ${{APP_REPLICAS}}
  probe:
    image: {image}
    command: ["sleep", "infinity"]
"""

FETCH = """\
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end="")
"""
RESOLVE = "import socket; print(' '.join(sorted({a[4][0] for a in socket.getaddrinfo('app', 8000)})))"


@pytest.fixture(scope="module")
def project() -> Iterator[str]:
    """A unique project whose four images are in Docker: built on a private engine (stopped again
    once they are saved), loaded with `docker load`, removed from Docker at the end."""
    require_tool("docker", "docker", "info")
    name = f"swweb{uuid.uuid4().hex[:6]}"
    images = [f"{name}-{service}" for service in SERVICES]
    client = docker.from_env()
    try:
        with contextlib.contextmanager(private_engine)("stackup-swarm-") as root:
            stackup(root, "image", "bootstrap", "debian:bookworm", timeout=BUILD_TIMEOUT_S)
            stackup(root, "-p", name, "-f", str(COMPOSE), "build", timeout=BUILD_TIMEOUT_S)
            save = subprocess.Popen([sys.executable, "-m", "stackup", "image", "save", *images],
                                    stdout=subprocess.PIPE, env=cli_env(root))
            loaded = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True, text=True,
                                    timeout=600, check=False)
            assert save.stdout is not None
            save.stdout.close()
            assert save.wait(timeout=600) == 0 and loaded.returncode == 0, loaded.stderr
            assert sorted(loaded.stdout.split()[2::3]) == sorted(f"{i}:latest" for i in images)
        yield name
    finally:
        for image in images:
            with contextlib.suppress(ImageNotFound):
                client.images.remove(image)
        left = [i for i in images if client.images.list(name=i)]
        client.close()
        assert left == [], f"images left in Docker: {left}"


def deploy(name: str, override: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`stackup deploy` needs no engine: its root is one that never holds anything."""
    return stackup(override.parent / "root", "-p", name, "-f", str(COMPOSE), "-f", str(override),
                   "deploy", "--target", "swarm", *args, env=env, timeout=600)


def app_tasks(client: docker.DockerClient, name: str) -> dict[str, int]:
    """Running app task id -> the host port it publishes."""
    tasks = client.services.get(f"{name}_app").tasks(filters={"desired-state": "running"})
    return {t["ID"]: t["Status"]["PortStatus"]["Ports"][0]["PublishedPort"] for t in tasks
            if t["Status"]["State"] == "running"}


def page(url: str, want: str) -> str:
    """The page once it starts with `want` (bounded); else what it last said."""
    deadline, body = time.monotonic() + DEADLINE_S, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read().decode()
        except OSError as err:  # refused, or 500 until the job created the table
            body = f"{url}: {err}"
        if body.startswith(want):
            return body
        time.sleep(0.5)
    return body


def probe(client: docker.DockerClient, name: str, *argv: str, want: str = "") -> str:
    """Run in the probe service's task (python3 is in the app image), until it prints `want`."""
    (container,) = client.containers.list(filters={"label": f"com.docker.swarm.service.name={name}_probe"})
    deadline, text = time.monotonic() + DEADLINE_S, ""
    while time.monotonic() < deadline:
        code, out = container.exec_run(["python3", "-c", *argv])
        text = out.decode()
        if code == 0 and text.startswith(want):
            return text
        time.sleep(0.5)
    return text


@pytest.mark.timeout(2 * BUILD_TIMEOUT_S)  # three Debian images built first, then removed
def test_webapp_deployed_reached_scaled_rolled_and_removed(swarm: Any, project: str, tmp_path: Path) -> None:
    override = tmp_path / "swarm.yaml"
    override.write_text(OVERRIDE.format(image=f"{project}-app"))
    env = {"WEBAPP_PORT": "", "GREETING": "hello one", "APP_REPLICAS": "1"}
    try:
        first = deploy(project, override, "--no-routing-mesh", **env)
        assert f"create job {project}_migrate\n" in first.stdout, first.stdout
        assert "services.app.depends_on.migrate: Swarm has no start order: migrate runs as a job" \
            in first.stderr
        # the page: the greeting, a visit counted in Redis, the note the migration job wrote in PostgreSQL
        (port,) = app_tasks(swarm, project).values()
        home = page(f"http://127.0.0.1:{port}/", "webapp v1\nhello one\nvisits: ")
        assert "- the migration job ran before the app started" in home, home
        # another service reaches it by service name over the stack's overlay network
        assert probe(swarm, project, FETCH, "http://app:8000/", want="webapp v1\n").startswith(
            "webapp v1\nhello one\nvisits: ")
        assert deploy(project, override, "--no-routing-mesh", **env).stdout == "no changes\n"

        scaled = deploy(project, override, "--no-routing-mesh", **{**env, "APP_REPLICAS": "2"})
        assert scaled.stdout == f"update service {project}_app\n"
        before = app_tasks(swarm, project)
        assert len(before) == 2
        addresses = probe(swarm, project, RESOLVE).split()
        assert len(addresses) == 2, addresses  # dnsrr: the name resolves to both tasks

        rolled = deploy(project, override, "--no-routing-mesh", **{**env, "APP_REPLICAS": "2",
                                                                   "GREETING": "hello two"})
        assert rolled.stdout == f"update service {project}_app\n"  # the job's spec is unchanged: not rerun
        service = swarm.services.get(f"{project}_app")
        assert service.attrs["UpdateStatus"]["State"] == "completed"  # rolled out task by task
        after = app_tasks(swarm, project)
        assert len(after) == 2 and not set(after) & set(before)
        rolled_page = "webapp v1\nhello two\n"
        for port in after.values():
            assert page(f"http://127.0.0.1:{port}/", rolled_page).startswith(rolled_page)
        assert probe(swarm, project, FETCH, "http://app:8000/", want="webapp v1\nhello two\n").startswith(
            "webapp v1\nhello two\n")

        removed = deploy(project, override, "--down", "-v", **env).stdout
        assert f"removed service {project}_app" in removed and f"removed volume {project}_pgdata" in removed
        label = {"label": f"{NAMESPACE_LABEL}={project}"}
        left = {kind: store.list(filters=label) for kind, store in (
            ("services", swarm.services), ("networks", swarm.networks), ("secrets", swarm.secrets),
            ("configs", swarm.configs), ("volumes", swarm.volumes))}
        left["containers"] = swarm.api.containers(all=True, filters=label)
        assert {kind: objs for kind, objs in left.items() if objs} == {}
    finally:
        remove_stack(swarm, project, volumes=True)
