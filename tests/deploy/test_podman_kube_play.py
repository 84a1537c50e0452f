"""Rendered manifests run for real with `podman kube play` (Debian's Podman) and answer on their port.

Podman is the only Kubernetes-manifest runner on the test machine; it plays Deployments, init
containers, PersistentVolumeClaims and ConfigMaps (it ignores Services, NetworkPolicies and
StatefulSets, hence `VolumeWorkload.DEPLOYMENT` for the stateful stack; Podman 4.3 also ignores
`subPath` on ConfigMap volumes, so configs mounted as single files are not played faithfully
and are left out here). Everything played is
taken down (`podman kube down`, plus the claim's volume) even when an assertion fails.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackup.deploy.kubernetes.context import VolumeWorkload
from stackup.deploy.kubernetes.render import translate

IMAGE = "stackup-bench/busybox:latest"


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture
def podman(tool: Any) -> None:
    tool("podman", "podman", "image", "exists", IMAGE)


@pytest.fixture
def played(podman: None, tmp_path: Path) -> Iterator[list[Path]]:
    """Manifest files the test plays; each is taken down, and its volumes removed, at the end."""
    files: list[Path] = []
    yield files
    for manifest in files:
        _podman("kube", "down", str(manifest), check=False)
    for line in (tmp_path / "volumes").read_text().split() if (tmp_path / "volumes").exists() else []:
        _podman("volume", "rm", "-f", line, check=False)


def _get(url: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: bytes = response.read()
                return body.decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _play(
    tmp_path: Path, loader: Any, stack: str, played: list[Path], **options: Any
) -> list[dict[str, Any]]:
    (tmp_path / "compose.yaml").write_text(stack)
    loaded = loader(tmp_path / "compose.yaml")
    rendering = translate(loaded.project, None, loaded.source_map, environment=loaded.environment,
                          referenced_files=loaded.referenced_files, **options)
    manifest = tmp_path / "manifests.yaml"
    manifest.write_text(rendering.to_yaml())
    # Podman makes a volume of each claim and of each ConfigMap it mounts
    volumes = [m["metadata"]["name"] for m in rendering.manifests()
               if m["kind"] in ("PersistentVolumeClaim", "ConfigMap")]
    (tmp_path / "volumes").write_text("\n".join(volumes))
    played.append(manifest)
    result = _podman("kube", "play", str(manifest), check=False)
    assert result.returncode == 0, result.stderr
    return rendering.manifests()


def test_a_web_server_answers_on_its_published_port(tmp_path: Path, loader: Any, played: list[Path],
                                                    port: int) -> None:
    name = f"kp-{uuid.uuid4().hex[:8]}"
    _play(tmp_path, loader, f"""\
name: {name}
services:
  web:
    image: {IMAGE}
    pull_policy: missing
    command:
      - /bin/sh
      - -c
      - mkdir -p /www && echo $$GREETING > /www/index.html && exec httpd -f -p 8080 -h /www
    environment:
      GREETING: hello from {name}
    ports: ["127.0.0.1:{port}:8080"]
""", played)
    assert _get(f"http://127.0.0.1:{port}/") == f"hello from {name}\n"
    pods = _podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
    assert "web-pod-0" in pods


def test_a_one_shot_dependency_runs_first_into_a_claim(tmp_path: Path, loader: Any, played: list[Path],
                                                    port: int) -> None:
    name = f"kp-{uuid.uuid4().hex[:8]}"
    manifests = _play(tmp_path, loader, f"""\
name: {name}
services:
  migrate:
    image: {IMAGE}
    pull_policy: missing
    command: [/bin/sh, -c, "echo schema v2 > /data/index.html"]
    volumes: [data:/data]
  web:
    image: {IMAGE}
    pull_policy: missing
    command: [/bin/httpd, -f, -p, "8080", -h, /data]
    volumes: [data:/data]
    ports: ["127.0.0.1:{port}:8080"]
    depends_on:
      migrate: {{condition: service_completed_successfully}}
volumes:
  data: {{}}
""", played, volume_workload=VolumeWorkload.DEPLOYMENT)
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds.count("Deployment") == 1 and "PersistentVolumeClaim" in kinds
    assert _get(f"http://127.0.0.1:{port}/") == "schema v2\n"  # written by the init container
    assert f"{name}-data" in _podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
