"""Helpers shared by the Docker runtime's tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import docker.errors

from stackup.errors import NotFound
from stackup.runtime.docker.runtime import DockerRuntime
from stackup.runtime.labels import COMPOSE_PROJECT

IMAGE = "stackup-bench/busybox:latest"
APPLETS = [
    "sh",
    "ls",
    "ps",
    "cat",
    "echo",
    "sleep",
    "hostname",
    "ip",
    "wget",
    "nc",
    "httpd",
    "id",
    "env",
    "true",
    "false",
    "nslookup",
    "mkdir",
    "rm",
    "touch",
    "stty",
    "kill",
    "test",
    "grep",
]
#: read at import: the autouse `clean_environ` fixture strips DOCKER_* before every test
ENDPOINT = os.environ.get("STACKUP_TEST_DOCKER_HOST", "")
PODMAN = "podman" in ENDPOINT


def runtime_env() -> dict[str, str]:
    return {"DOCKER_HOST": ENDPOINT} if ENDPOINT else {}


def ensure_image(rt: DockerRuntime) -> None:
    """Import the busybox image (Debian's busybox-static) unless the daemon has it already."""
    try:
        rt.inspect_image(IMAGE)
        return
    except NotFound:
        pass
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is needed to make the test image"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
            (root / d).mkdir(parents=True)
        shutil.copy(busybox, root / "bin" / "busybox")
        for applet in APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        rt.api.import_image(src=str(archive), repository=IMAGE.split(":", maxsplit=1)[0], tag="latest")


def cleanup_project(rt: DockerRuntime, name: str) -> None:
    """Everything labelled with project `name` (either tool's label), containers first."""
    api = rt.api
    left = [c["Id"] for c in api.containers(all=True, filters={"label": f"{COMPOSE_PROJECT}={name}"})]
    for _ in range(3):  # Podman refuses to remove a container another one joined: dependents first
        failed = []
        for cid in left:
            try:
                api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                failed.append(cid)
        left = failed
    assert not left, f"could not remove containers {left}"
    for label in (f"{COMPOSE_PROJECT}={name}", f"io.stackup.project={name}"):
        for n in api.networks(filters={"label": label}):
            api.remove_network(n["Id"])
        for v in api.volumes(filters={"label": label}).get("Volumes") or []:
            api.remove_volume(v["Name"], force=True)


def compose(*args: str, cwd: Path, project: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """docker-compose 1.29 on the same daemon."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env.update(runtime_env())
    proc = subprocess.run(
        ["docker-compose", "-p", project, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker-compose {' '.join(args)}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def load_stack(directory: Path, project: str, text: str) -> Any:
    """Write `compose.yaml` into `directory` and load it as `stackup` would (no OS environment)."""
    from stackup.spec.loader import LoadOptions, load

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "compose.yaml").write_text(text)
    return load(LoadOptions(project_name=project, working_dir=directory, environ={}))


def options_for(loaded: Any, **fields: Any) -> Any:
    """`ReconcileOptions` filled from the load, as the CLI's `reconcile_options` does."""
    from stackup.planner.options import ReconcileOptions

    return ReconcileOptions(
        referenced_files=loaded.referenced_files,
        disabled_services=frozenset(loaded.disabled_services),
        working_dir=str(loaded.files[0].parent),
        config_files=tuple(str(f) for f in loaded.files),
        **fields,
    )
