"""DockerRuntime's `ContainerImages` (commit, export) against the real daemon, so `Stack.commit`
and `Stack.export` mean the same on both runtimes."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid

import pytest

from stackup.runtime.base import ContainerImages, ExecSpec
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker.test_ops import started

pytestmark = pytest.mark.docker


def test_commit_and_export(docker_rt: DockerRuntime, project_name: str) -> None:
    assert isinstance(docker_rt, ContainerImages)
    cid = started(docker_rt, project_name)
    assert docker_rt.exec(cid, ExecSpec(("sh", "-c", "echo kept > /kept.txt"))).exit_code == 0
    exported = b"".join(docker_rt.export_container(cid))
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        data = tar.extractfile("kept.txt")
        assert data is not None and data.read() == b"kept\n"
    ref = f"stackup-test/commit-{uuid.uuid4().hex[:8]}:1"
    try:
        image = docker_rt.commit_container(cid, ref)
        assert ref in image.refs
        ran = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "cat", "/kept.txt"],
                             capture_output=True, text=True, check=False)
        assert ran.stdout == "kept\n", ran.stderr
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)
