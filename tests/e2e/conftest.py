"""End-to-end fixtures: the real `stackup` CLI against a real engine on a private STACKUP_ROOT.

One engine root per test module (starting an engine and importing the busybox image costs about
two seconds); every test uses its own project name. The finalizer takes every project down,
stops the engine and checks that nothing stackup made is left: no mounts under the root, no
conmon of this root, no runc containers in its runc root.

Parity: a module marked `parity` runs each of its tests twice, on the native engine and with
`--runtime docker` (STACKUP_RUNTIME=docker) against the local Docker daemon, with the same
assertions; the busybox test image goes into the daemon by `stackup image save | docker load`.
A test that cannot apply to Docker is marked `native_only("why")` and skipped there with that
reason. `STACKUP_TEST_DOCKER_HOST=unix:///path/podman.sock` runs the Docker half over Podman's
compatible socket instead; `docker_only("why")` marks what Podman does not do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IMAGE = "stackup-test/busybox:latest"
BACKENDS = ("native", "docker")
#: read at import, as OCI_RUNTIME: the Docker half's endpoint (empty: the default socket)
DOCKER_HOST = os.environ.get("STACKUP_TEST_DOCKER_HOST", "")
PODMAN = "podman" in DOCKER_HOST
#: `STACKUP_OCI_RUNTIME=runc pytest tests/e2e` runs the suite on runc. Read at import: the
#: autouse `clean_environ` fixture strips STACKUP_* from the environment before each test.
OCI_RUNTIME = os.environ.get("STACKUP_OCI_RUNTIME", "")


@dataclass
class Stackup:
    """Runs `python -m stackup` with this root; remembers projects so teardown can remove them."""

    root: Path
    projects: set[str] = field(default_factory=set)
    backend: str = "native"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STACKUP_", "DOCKER_"))}
        if OCI_RUNTIME:  # the run's choice of runtime reaches every engine the CLI starts
            env["STACKUP_OCI_RUNTIME"] = OCI_RUNTIME
        env["STACKUP_ROOT"] = str(self.root)
        if self.backend == "docker":
            env["STACKUP_RUNTIME"] = "docker"
            if DOCKER_HOST:
                env["DOCKER_HOST"] = DOCKER_HOST
        return env

    @property
    def docker(self) -> bool:
        return self.backend == "docker"

    def run(self, *args: str, cwd: Path | None = None, check: bool = True,
            timeout: float = 180, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "stackup", *args], cwd=cwd, env=self.env(), capture_output=True,
            text=True, timeout=timeout, input=stdin, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"stackup {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}"
                f"\n--- stderr\n{proc.stderr}"
            )
        return proc

    def project(self, tmp_path: Path, compose: str, prefix: str = "e2e") -> Path:
        """Write `compose` into a fresh directory whose project name is unique for this run."""
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        directory = tmp_path / name
        directory.mkdir()
        (directory / "compose.yaml").write_text(compose.replace("$IMAGE", IMAGE))
        self.projects.add(name)
        return directory


def _leftovers(root: Path) -> list[str]:
    found = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
             if str(root) in line.split()[1]]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
    found += [line for line in ps.splitlines() if "conmon" in line and str(root) in line]
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stackup" in metafunc.fixturenames and metafunc.definition.get_closest_marker("parity"):
        metafunc.parametrize("backend", BACKENDS, indirect=True, scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("backend") != "docker":
            continue
        native = item.get_closest_marker("native_only")
        if native is not None:
            item.add_marker(pytest.mark.skip(reason=f"Docker backend: {native.args[0]}"))
        podman = item.get_closest_marker("docker_only")
        if PODMAN and podman is not None:
            item.add_marker(pytest.mark.skip(reason=f"Podman: {podman.args[0]}"))


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """`native` unless the module is marked `parity` (then both, one module-scoped run each)."""
    return str(getattr(request, "param", "native"))


def _docker(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **({"DOCKER_HOST": DOCKER_HOST} if DOCKER_HOST else {})}
    return subprocess.run(["docker", *args], env=env, capture_output=True, check=False,
                          timeout=180)


def _into_docker(su: Stackup) -> None:
    """The native test image into the daemon, unless it is there: `stackup image save | docker load`.
    It stays (a shared, read-only test image, as tests/runtime/docker leaves its own)."""
    if shutil.which("docker") is None:
        pytest.skip("Docker backend: no docker CLI on this machine (install docker.io)")
    if _docker("image", "inspect", IMAGE).returncode == 0:
        return
    tar = su.root / "busybox.tar"
    su.run("--runtime", "native", "image", "save", "-o", str(tar), IMAGE)
    loaded = _docker("load", "-i", str(tar))
    tar.unlink()
    assert loaded.returncode == 0, f"docker load: {loaded.stderr.decode(errors='replace')}"


def docker_privileged_exec() -> bool:
    """Whether the daemon runs a privileged exec at all (a sandboxed dockerd may not: its bounding
    set lacks a capability Docker asks for, and every `docker exec --privileged` fails)."""
    name = f"e2epriv{uuid.uuid4().hex[:8]}"
    if _docker("run", "-d", "--name", name, "--network", "none", IMAGE, "sleep", "60").returncode != 0:
        return False
    try:
        return _docker("exec", "--privileged", name, "true").returncode == 0
    finally:
        _docker("rm", "-f", name)


def _docker_leftovers(projects: set[str]) -> list[str]:
    """Containers, networks and volumes of these projects still on the daemon (force-removed)."""
    found: list[str] = []
    for name in sorted(projects):
        label = f"label=com.docker.compose.project={name}"
        for kind, listing in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                              ("volume", ["volume", "ls", "-q"])):
            ids = _docker(*listing, "--filter", label).stdout.decode().split()
            if ids:
                found += [f"{kind} {i} of {name}" for i in ids]
                _docker(*([kind, "rm", "-f"] if kind != "network" else ["network", "rm"]), *ids)
    return found


@pytest.fixture(scope="module")
def stackup(backend: str) -> Iterator[Stackup]:
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests need root (runc, conmon, mounts, netlink)")
    root = Path(tempfile.mkdtemp(prefix="stackup-e2e-"))
    su = Stackup(root=root, backend=backend)
    left: list[str] = []
    try:
        su.run("--runtime", "native", "image", "bootstrap", "busybox", IMAGE)
        if su.docker:
            _into_docker(su)
        yield su
    finally:
        for name in sorted(su.projects):
            su.run("-p", name, "down", "-v", "-t", "1", check=False)
        if su.docker:
            left += _docker_leftovers(su.projects)
        su.run("--runtime", "native", "engine", "stop", check=False)
        left += _leftovers(root)
        if not _leftovers(root):  # never delete through a mount that is still there
            shutil.rmtree(root, ignore_errors=True)
        assert not left, f"the engine left these behind: {left}"
