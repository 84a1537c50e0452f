"""`build_image` on the real Docker daemon: every `BuildSpec` field its classic build API takes
reaches the image, and the BuildKit-only fields are refused by name before anything is sent."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure, UsageError
from stackup.runtime import labels as lbl
from stackup.runtime.base import BuildSpec, ContainerSpec
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker._docker import IMAGE

pytestmark = pytest.mark.docker

DOCKERFILE = f"""\
FROM {IMAGE} AS first
ARG WHO=nobody
RUN echo "first $WHO" > /which

FROM {IMAGE} AS second
RUN echo second > /which
"""


def _cat(rt: DockerRuntime, project: str, image: str, path: str) -> str:
    cid = rt.create_container(ContainerSpec(name=f"{project}-cat", image=image, command=("cat", path),
                                            labels={lbl.PROJECT: project})).id
    try:
        rt.start_container(cid)
        assert rt.wait_container(cid) == 0
        return "\n".join(e.text for e in rt.logs(cid))
    finally:
        rt.remove_container(cid)


def test_build_passes_what_the_api_takes(docker_rt: DockerRuntime, project_name: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    tag, extra = f"{project_name}-img:latest", f"{project_name}-img:extra"
    lines: list[str] = []
    try:
        built = docker_rt.build_image(BuildSpec(
            tag=tag, context=str(tmp_path), args={"WHO": "stackup"}, target="first",
            labels={"org.example.built": "yes"}, tags=(extra,), network="none", shm_size=8 * 2**20,
            extra_hosts={"builder.example": "10.9.8.7"}, no_cache=True, pull=False,
        ), lines.append)
        assert tag in built.refs and extra in {r for i in docker_rt.list_images() for r in i.refs}
        assert _cat(docker_rt, project_name, tag, "/which") == "first stackup"  # target and args
        config = docker_rt.api.inspect_image(tag)["Config"]
        assert config["Labels"]["org.example.built"] == "yes"
        assert not any("Using cache" in line for line in lines), lines  # no_cache
        # extra_hosts, network and shm size reach the RUN steps
        (tmp_path / "Dockerfile").write_text(
            f"FROM {IMAGE}\nRUN grep builder.example /etc/hosts > /hosts; "
            "ls /sys/class/net > /nets; df -k /dev/shm | tail -1 > /shm\n"
        )
        docker_rt.build_image(BuildSpec(tag=tag, context=str(tmp_path), network="none",
                                        shm_size=8 * 2**20, extra_hosts={"builder.example": "10.9.8.7"}))
        assert "10.9.8.7" in _cat(docker_rt, project_name, tag, "/hosts")
        assert _cat(docker_rt, project_name, tag, "/nets").split() == ["lo"]
        assert _cat(docker_rt, project_name, tag, "/shm").split()[1] == "8192"
        # an inline Dockerfile
        docker_rt.build_image(BuildSpec(tag=tag, context=str(tmp_path),
                                        dockerfile_inline=f"FROM {IMAGE}\nRUN echo inline > /which\n"))
        assert _cat(docker_rt, project_name, tag, "/which") == "inline"
    finally:
        for ref in (tag, extra):
            with contextlib.suppress(RuntimeFailure):  # a build that failed made nothing to remove
                docker_rt.remove_image(ref)


@pytest.mark.parametrize(("field", "value"), [("secrets", {"token": "/etc/hostname"}),
                                              ("secret_values", {"token": "x"}),
                                              ("additional_contexts", {"src": "/tmp"})])
def test_buildkit_only_fields_are_refused_by_name(
    docker_rt: DockerRuntime, tmp_path: Path, field: str, value: dict[str, str]
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\n")
    spec = BuildSpec(tag="stackup-never-built:latest", context=str(tmp_path), **{field: value})  # type: ignore[arg-type]
    with pytest.raises(UsageError) as refused:
        docker_rt.build_image(spec)
    name = "secrets" if field == "secret_values" else field
    assert f"build.{name}" in str(refused.value) and "BuildKit" in str(refused.value)
