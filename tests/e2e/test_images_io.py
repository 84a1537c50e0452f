"""Images out and in on the real engine: a Debian base by debootstrap, commit, export, save/load
round trips through the real Docker and Podman, history and tag.

The Debian base is bootstrapped once per module; debootstrap itself runs once per machine (its
rootfs tar is cached under /var/cache/stackup), so a second session imports in seconds. Every
Docker and Podman image made here has a unique name and is removed, even on failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import IMAGE, Stackup

DEBOOTSTRAP_TIMEOUT_S = 1800


def _project(stackup: Stackup, tmp_path: Path, services: str) -> Path:
    return stackup.project(tmp_path, "services:\n" + services)


def _unique(prefix: str) -> str:
    return f"stackup-e2e/{prefix}-{uuid.uuid4().hex[:8]}:1"


def _sleeper(image: str, script: str = "true") -> str:
    return f"""  app:
    image: {image}
    init: true
    network_mode: none
    command: {json.dumps(["sh", "-c", script + "; exec sleep 3600"])}
"""


def _run_in(stackup: Stackup, tmp_path: Path, image: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """`stackup run --rm` of a one-service project using `image`."""
    cwd = _project(
        stackup,
        tmp_path,
        f"""  tool:
    image: {image}
    network_mode: none
""",
    )
    return stackup.run("run", "--rm", "tool", *argv, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def debian(stackup: Stackup) -> str:
    stackup.run("image", "bootstrap", "debian:bookworm", timeout=DEBOOTSTRAP_TIMEOUT_S)
    return "debian:bookworm"


@pytest.fixture
def docker_images() -> Iterator[list[str]]:
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode
    ):
        pytest.fail("Docker is not available: run /work/shared/peers/setup.sh")
    made: list[str] = []
    yield made
    for name in made:
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)


@pytest.fixture
def podman_images() -> Iterator[list[str]]:
    if shutil.which("podman") is None:
        pytest.fail("Podman is not installed: run /work/shared/peers/setup.sh")
    made: list[str] = []
    yield made
    for name in made:
        subprocess.run(["podman", "rmi", "-f", name], capture_output=True, check=False)


def test_debian_bookworm_base_runs(stackup: Stackup, tmp_path: Path, debian: str) -> None:
    out = _run_in(stackup, tmp_path, debian, "cat", "/etc/debian_version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("12."), out.stdout
    shell = _run_in(stackup, tmp_path, debian, "bash", "-c", "echo $BASH_VERSION; command -v apt-get dpkg")
    assert shell.returncode == 0 and "/usr/bin/apt-get" in shell.stdout, shell.stderr
    history = stackup.run("image", "history", "--no-trunc", debian).stdout
    assert "debootstrap --variant=minbase bookworm" in history


def test_debian_slim_drops_docs_and_keeps_copyrights(stackup: Stackup, tmp_path: Path, debian: str) -> None:
    stackup.run("image", "bootstrap", "debian:bookworm-slim", timeout=DEBOOTSTRAP_TIMEOUT_S)
    script = (
        "ls /usr/share/man | wc -l; ls /usr/share/doc/bash; cat /etc/dpkg/dpkg.cfg.d/slim | head -1; "
        "cat /etc/debian_version"
    )
    out = _run_in(stackup, tmp_path, "debian:bookworm-slim", "sh", "-c", script)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "0" and lines[1] == "copyright" and "path-exclude" in out.stdout, out.stdout
    full = _run_in(stackup, tmp_path, debian, "sh", "-c", "ls /usr/share/man | wc -l")
    assert int(full.stdout.strip()) > 0


def test_commit_round_trip_and_history(stackup: Stackup, tmp_path: Path) -> None:
    cwd = _project(stackup, tmp_path, _sleeper(IMAGE, "echo committed > /srv.txt; rm /bin/wc"))
    stackup.run("up", "-d", cwd=cwd)
    name = _unique("commit")
    image_id = stackup.run("commit", "app", name, cwd=cwd).stdout.strip()
    assert image_id.startswith("sha256:")
    out = _run_in(stackup, tmp_path, name, "sh", "-c", "cat /srv.txt; test -e /bin/wc || echo wc-gone")
    assert out.returncode == 0 and out.stdout.split() == ["committed", "wc-gone"], out.stderr
    history = stackup.run("image", "history", "--format", "json", name).stdout
    assert '"id": "' + image_id in history and "echo committed" in history
    stackup.run("image", "tag", name, name.replace(":1", ":2"))
    again = _run_in(stackup, tmp_path, name.replace(":1", ":2"), "cat", "/srv.txt")
    assert again.stdout.strip() == "committed"
    stackup.run("down", "-t", "1", cwd=cwd)


def test_export_is_the_whole_filesystem(stackup: Stackup, tmp_path: Path) -> None:
    cwd = _project(stackup, tmp_path, _sleeper(IMAGE, "echo exported > /data.txt; rm /bin/wc"))
    stackup.run("up", "-d", cwd=cwd)
    target = tmp_path / "export.tar"
    stackup.run("export", "app", "-o", str(target), cwd=cwd)
    with tarfile.open(target) as tar:
        names = set(tar.getnames())
        data = tar.extractfile("data.txt")
        assert data is not None and data.read() == b"exported\n"
    assert {"bin/busybox", "etc/passwd", "bin/sh"} <= names
    assert "bin/wc" not in names and not any(".wh." in n for n in names)
    stackup.run("down", "-t", "1", cwd=cwd)


def test_save_then_docker_load_runs(stackup: Stackup, tmp_path: Path, docker_images: list[str]) -> None:
    cwd = _project(stackup, tmp_path, _sleeper(IMAGE, "echo from-stackup > /made.txt"))
    stackup.run("up", "-d", cwd=cwd)
    name = _unique("save")
    stackup.run("commit", "app", name, cwd=cwd)
    archive = tmp_path / "saved.tar"
    stackup.run("image", "save", name, "-o", str(archive))
    docker_images.append(name)
    loaded = subprocess.run(
        ["docker", "load", "-i", str(archive)], capture_output=True, text=True, check=False
    )
    assert loaded.returncode == 0, loaded.stderr
    ran = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", name, "cat", "/made.txt"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0 and ran.stdout == "from-stackup\n", ran.stderr
    stackup.run("down", "-t", "1", cwd=cwd)


def test_docker_save_then_load_runs_in_stackup(
    stackup: Stackup, tmp_path: Path, docker_images: list[str]
) -> None:
    name = _unique("docker")
    if subprocess.run(
        ["docker", "tag", "stackup-bench/busybox:latest", name], capture_output=True, check=False
    ).returncode:
        pytest.fail("stackup-bench/busybox:latest is missing from Docker: run /work/shared/peers/setup.sh")
    docker_images.append(name)
    saved = subprocess.run(["docker", "save", name], capture_output=True, check=True).stdout
    loaded = subprocess.run(
        [sys.executable, "-m", "stackup", "image", "load"],
        input=saved,
        env=stackup.env(),
        capture_output=True,
        check=False,
    )
    assert loaded.returncode == 0 and f"Loaded image: {name}" in loaded.stdout.decode(), loaded.stderr
    out = _run_in(stackup, tmp_path, name, "sh", "-c", "echo ran-in-stackup")
    assert out.returncode == 0 and out.stdout == "ran-in-stackup\n", out.stderr


def test_podman_round_trip(stackup: Stackup, tmp_path: Path, podman_images: list[str]) -> None:
    cwd = _project(stackup, tmp_path, _sleeper(IMAGE, "echo via-podman > /p.txt"))
    stackup.run("up", "-d", cwd=cwd)
    name = _unique("podman")
    stackup.run("commit", "app", name, cwd=cwd)
    stackup.run("down", "-t", "1", cwd=cwd)
    archive = tmp_path / "to-podman.tar"
    stackup.run("image", "save", name, "-o", str(archive))
    podman_images.append("docker.io/" + name)
    loaded = subprocess.run(
        ["podman", "load", "-i", str(archive)], capture_output=True, text=True, check=False
    )
    assert loaded.returncode == 0, loaded.stderr
    ran = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "docker.io/" + name, "cat", "/p.txt"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0 and ran.stdout == "via-podman\n", ran.stderr
    back = name.replace(":1", ":back")
    podman_images.append("docker.io/" + back)
    subprocess.run(["podman", "tag", "docker.io/" + name, "docker.io/" + back], check=True)
    saved = tmp_path / "from-podman.tar"
    subprocess.run(["podman", "save", "-o", str(saved), "docker.io/" + back], capture_output=True, check=True)
    stackup.run("image", "load", "-i", str(saved))
    out = _run_in(stackup, tmp_path, back, "cat", "/p.txt")
    assert out.returncode == 0 and out.stdout == "via-podman\n", out.stderr


def test_save_of_an_unknown_image_fails_and_writes_nothing(stackup: Stackup, tmp_path: Path) -> None:
    target = tmp_path / "never.tar"
    missing = stackup.run("image", "save", "stackup-e2e/never-made:1", "-o", str(target), check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr
    assert list(tmp_path.iterdir()) == []
