"""The examples' own manifests, and a `deploy --push`, played for real with `podman kube play`.

Images are built by stackup on a private engine and reach Podman the way a user moves them:
`stackup image save` then `podman load` for the examples, or `stackup deploy --push` into a real
registry on loopback (Debian's docker-registry) that `podman kube play` pulls from. Manifests come
from `stackup render --target kubernetes --volume-workload deployment` (Podman ignores
StatefulSets); `_podman.Player` says what stands in for a cluster's Services and init-container
retries. Each test uses a unique project name (`-p`), so its images, claims and pods are its own,
and removes all of them. The webapp example builds three Debian images (apt-get from the mirror):
the slowest test of the package, a few minutes.
"""

from __future__ import annotations

import graphlib
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackup.planner.graph import dependencies
from tests.deploy._cli import stackup
from tests.deploy._podman import WORKLOADS, Player, podman
from tests.deploy.conftest import free_port, load_stack
from tests.engineroot import IMAGE, private_engine
from tests.registry._registry import RegistryServer

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BUILD_TIMEOUT_S = 1800.0


@pytest.fixture(scope="module")
def engine() -> Iterator[Path]:
    yield from private_engine("stackup-deploy-")


@pytest.fixture
def player(tool: Any, tmp_path: Path) -> Iterator[Player]:
    tool("podman", "podman", "version")
    made = Player(tmp_path)
    try:
        yield made
    finally:
        made.close()


def get(url: str, deadline_s: float = 60.0) -> str:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body: bytes = response.read()
                return body.decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def workload_order(compose: Path, env: dict[str, str], manifests: list[dict[str, Any]]) -> list[str]:
    """Workloads, dependencies first: a pod's init containers' dependencies count as the pod's."""
    deps = dependencies(load_stack(compose, env).project)
    order = graphlib.TopologicalSorter[str]()
    for workload in (m for m in manifests if m["kind"] in WORKLOADS):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        inits = {c["name"] for c in pod.get("initContainers") or []}
        needed = set(deps.get(name, {})).union(*(deps.get(i, {}) for i in inits)) - inits - {name}
        order.add(name, *needed)
    return list(order.static_order())


def render(root: Path, compose: Path, project: str, env: dict[str, str]) -> list[dict[str, Any]]:
    out = stackup(root, "-p", project, "-f", str(compose), "render", "--target", "kubernetes",
                  "--volume-workload", "deployment", env=env).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def save_into_podman(root: Path, player: Player, names: list[str], tmp_path: Path) -> None:
    archive = tmp_path / "images.tar"
    stackup(root, "image", "save", *names, "-o", str(archive))
    loaded = player.load_images(archive)
    assert len(loaded) == len(names), loaded
    archive.unlink()


@pytest.mark.timeout(BUILD_TIMEOUT_S)  # the migration job's image is built on a Debian base
def test_hello_example_plays_and_serves_after_its_init_container(
        engine: Path, player: Player, tmp_path: Path) -> None:
    project, port = f"kphello{uuid.uuid4().hex[:6]}", free_port()
    env = {"HELLO_PORT": str(port)}
    compose = EXAMPLES / "hello" / "compose.yaml"
    stackup(engine, "image", "tag", IMAGE, "stackup/busybox:latest")
    stackup(engine, "image", "bootstrap", "debian:bookworm", timeout=BUILD_TIMEOUT_S)
    stackup(engine, "-p", project, "-f", str(compose), "build", env=env, timeout=BUILD_TIMEOUT_S)
    save_into_podman(engine, player, ["stackup/busybox:latest", "stackup/hello-migrate:latest"], tmp_path)
    manifests = render(engine, compose, project, env)
    order = workload_order(compose, env, manifests)
    assert order == ["db", "web"]  # migrate is web's init container, after db is healthy
    player.play(manifests, order)
    assert get(f"http://127.0.0.1:{port}/") == (EXAMPLES / "hello" / "www" / "index.html").read_text()
    # the init container wrote into the claim db mounts too
    assert player.exec("db", "cat", "/data/schema") == "v2\n"


def test_compose_compat_example_plays_and_finds_services_by_name(
        engine: Path, player: Player, tmp_path: Path) -> None:
    project, web, api = f"kpcompat{uuid.uuid4().hex[:6]}", free_port(), free_port()
    env = {"WEB_PORT": str(web), "API_PORT": str(api)}
    compose = EXAMPLES / "compose-compat" / "compose.yaml"
    stackup(engine, "image", "tag", IMAGE, "stackup/busybox:latest")
    stackup(engine, "-p", project, "-f", str(compose), "build", env=env, timeout=BUILD_TIMEOUT_S)
    save_into_podman(engine, player, [f"{project}-web", f"{project}-api"], tmp_path)
    manifests = render(engine, compose, project, env)
    player.play(manifests, workload_order(compose, env, manifests))
    assert get(f"http://127.0.0.1:{web}/") == "hello from a Compose file\nrole=web env=demo tz=UTC\n"
    assert get(f"http://127.0.0.1:{api}/") == "api at your service\nrole=api env=demo tz=UTC\n"
    # discovery by service name, from inside the other pod
    assert player.exec("web", "wget", "-q", "-O", "-", "http://api:8080/").startswith("api at your service")


@pytest.mark.timeout(2 * BUILD_TIMEOUT_S)  # three Debian images from a fresh engine
def test_webapp_example_plays_with_postgres_redis_and_its_migration(
        engine: Path, player: Player, tmp_path: Path) -> None:
    project, port = f"kpwebapp{uuid.uuid4().hex[:6]}", free_port()
    env = {"WEBAPP_PORT": str(port), "GREETING": f"hello from {project}"}
    compose = EXAMPLES / "webapp" / "compose.yaml"
    stackup(engine, "image", "bootstrap", "debian:bookworm", timeout=BUILD_TIMEOUT_S)
    stackup(engine, "-p", project, "-f", str(compose), "build", env=env, timeout=BUILD_TIMEOUT_S)
    save_into_podman(engine, player, [f"{project}-{s}" for s in ("db", "cache", "app", "migrate")], tmp_path)
    manifests = render(engine, compose, project, env)
    order = workload_order(compose, env, manifests)
    assert order.index("app") > max(order.index("db"), order.index("cache"))
    player.play(manifests, order)
    home = get(f"http://127.0.0.1:{port}/")
    assert home.startswith(f"webapp v1\nhello from {project}\nvisits: 1\n"), home
    assert "- the migration job ran before the app started" in home  # the init container ran


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    with tempfile.TemporaryDirectory(prefix="stackup-deploy-registry-") as directory, \
            RegistryServer(Path(directory)) as server:
        yield server


def test_deploy_push_sends_built_images_that_the_manifests_name(
        engine: Path, player: Player, registry: RegistryServer, fake_kube: Any, tmp_path: Path) -> None:
    project, port = f"kppush{uuid.uuid4().hex[:6]}", free_port()
    image = f"{registry.host}/deploy/{project}-web:1"
    directory = tmp_path / "stack"
    directory.mkdir()
    (directory / "Dockerfile").write_text(
        f"FROM {IMAGE}\nRUN mkdir /www && echo pushed by {project} > /www/index.html\n"
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n')
    compose = directory / "compose.yaml"
    compose.write_text(f"""\
name: {project}
services:
  web:
    build: .
    image: {image}
    ports: ["127.0.0.1:{port}:8080"]
  local:
    build: .
    command: ["sleep", "3600"]
""")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""\
apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{fake_kube.host}"}}}}]
users: [{{name: tester, user: {{token: not-a-secret}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: tester}}}}]
current-context: fake
""")
    env = {"KUBECONFIG": str(kubeconfig), "DOCKER_CONFIG": str(tmp_path / "docker")}
    stackup(engine, "build", cwd=directory, env=env)
    deployed = stackup(engine, "deploy", "--target", "kubernetes", "--push", cwd=directory, env=env)
    assert f"pushed {image} sha256:" in deployed.stdout
    assert "services.local: built here without `image:`" in deployed.stderr
    assert registry.requests_since(0, f'"PUT /v2/deploy/{project}-web/manifests/1')
    applied = fake_kube.stored(project)["Deployment/web"]
    assert applied["spec"]["template"]["spec"]["containers"][0]["image"] == image
    # Podman has never seen the image: kube play pulls it from the registry by that name
    assert podman("image", "exists", image, check=False).returncode != 0
    player.images.append(image)
    manifests = render(engine, compose, project, env)
    player.play(manifests, ["web"], tls_verify=False)
    assert get(f"http://127.0.0.1:{port}/") == f"pushed by {project}\n"
