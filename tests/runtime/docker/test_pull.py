"""`pull_image` from a real registry: Debian's docker-registry (distribution 2.8) on loopback,
which the daemon treats as insecure by default, with the busybox image pushed into it first."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker._docker import IMAGE

pytestmark = [
    pytest.mark.docker,
    pytest.mark.docker_only(
        "Podman wants HTTPS from a loopback registry unless registries.conf marks it insecure, "
        "a system setting this test does not change"
    ),
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_pull_from_a_registry(docker_rt: DockerRuntime, registry: str) -> None:
    repo = f"{registry}/stackup-test/busybox"
    tag = uuid.uuid4().hex[:8]
    ref = f"{repo}:{tag}"
    api = docker_rt.api
    api.tag(IMAGE, repo, tag)
    try:
        for line in api.push(repo, tag=tag, stream=True, decode=True):
            assert "error" not in line, line
        api.remove_image(ref)
        with pytest.raises(NotFound):
            docker_rt.inspect_image(ref)
        pulled = docker_rt.pull_image(ref)
        assert ref in pulled.refs and pulled.id == docker_rt.inspect_image(IMAGE).id
        with pytest.raises(RuntimeFailure, match=r"manifest unknown|not found"):
            docker_rt.pull_image(f"{repo}:missing")
    finally:
        with contextlib.suppress(NotFound):
            docker_rt.remove_image(ref)
