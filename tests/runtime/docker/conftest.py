"""Fixtures for the Docker runtime's tests: the real local daemon, a busybox image in it, and a
unique project per test whose containers, networks and volumes are removed however the test ends.

The daemon is the one the docker CLI would use (`unix:///var/run/docker.sock` here; Debian's
docker.io, started by `/work/shared/peers/setup.sh` or `.ci/run`). Set `STACKUP_TEST_DOCKER_HOST`
to run the same tests over another endpoint, e.g. Podman's socket (`podman system service -t 0
unix:///tmp/podman.sock`); tests that Podman cannot pass are marked `docker_only` and skipped there.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker._docker import ENDPOINT, PODMAN, cleanup_project, ensure_image, runtime_env


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("docker_only")
        if PODMAN and marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"Podman: {marker.args[0] if marker.args else ''}"))


@pytest.fixture(scope="session")
def docker_rt() -> Iterator[DockerRuntime]:
    """The shared runtime (one client, one pool, as the CLI has). Fails, not skips, when a
    `dockerd` is installed but does not answer: that is a broken setup, not a missing feature."""
    rt = DockerRuntime.from_env(runtime_env())
    try:
        rt.ping()
    except RuntimeFailure:
        if shutil.which("dockerd") is None and not ENDPOINT:
            pytest.skip("no Docker daemon on this machine (install docker.io)")
        raise
    ensure_image(rt)
    yield rt
    rt.close()


@pytest.fixture
def project_name(docker_rt: DockerRuntime) -> Iterator[str]:
    """A unique project name; whatever carries it is removed after the test, pass or fail."""
    name = f"sut{uuid.uuid4().hex[:10]}"
    yield name
    cleanup_project(docker_rt, name)
