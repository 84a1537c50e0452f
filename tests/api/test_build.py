"""Dockerfile builds on the real engine through `Stack`: the path `stackup build` and `up --build` take.

The base is the module engine's busybox image; the Debian test (apt-get install in a RUN) makes
its own base with debootstrap from this machine's apt mirror, once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stackup.api import Stack
from stackup.errors import BuildFailed, DockerfileError

IMAGE = "stackup-test/busybox:latest"
pytestmark = pytest.mark.engine


class Lines:
    """Collects `Stack.build` progress."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, _service: str, line: str) -> None:
        self.lines.append(line)

    def cached(self) -> int:
        return sum(line.endswith(" CACHED") for line in self.lines)

    def ran(self) -> int:
        return sum(" DONE " in line for line in self.lines)


def _project(directory: Path, dockerfile: str, service: str = "", files: dict[str, str] | None = None) -> str:
    (directory / "Dockerfile").write_text(dockerfile.replace("$IMAGE", IMAGE))
    for name, text in (files or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    name = f"bld{uuid.uuid4().hex[:8]}"
    (directory / "compose.yaml").write_text(
        service or "services:\n  app:\n    build: .\n    init: true\n    command: [sleep, '1h']\n"
    )
    return name


TWO_STAGE = """\
FROM $IMAGE AS compile
WORKDIR /src
COPY greet.txt .
RUN printf '#!/bin/sh\\necho "hello from $(cat /etc/greet.txt)"\\n' > /src/hello && chmod 755 /src/hello

FROM scratch
COPY --from=compile /bin/busybox /bin/busybox
COPY --from=compile /src/hello /usr/local/bin/hello
COPY --from=compile /src/greet.txt /etc/greet.txt
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["hello"]
"""


def test_two_stage_build_runs_and_rebuilds_from_cache(api_env: Path) -> None:
    name = _project(api_env, TWO_STAGE, files={"greet.txt": "stage one\n", "notes.md": "not read\n"})
    with Stack.load(project_name=name) as stack:
        first = Lines()
        built = stack.build(progress=first)
        assert first.ran() == 7 and first.cached() == 0, first.lines
        stack.up()
        try:
            result = stack.exec("app", ["hello"])
            assert result.exit_code == 0 and result.stdout == b"hello from stage one\n"
            again = Lines()
            assert stack.build(progress=again) == built  # same config, same image id
            assert again.ran() == 0 and again.cached() == 7, again.lines
            (api_env / "notes.md").write_text("changed, but no step reads it\n")
            assert stack.build(progress=Lines()) == built
            (api_env / "greet.txt").write_text("stage two\n")
            partial = Lines()
            rebuilt = stack.build(progress=partial)
            # WORKDIR cached; COPY greet.txt and everything after it in stage 1 rerun, and every
            # step of stage 2 that reads stage 1 (the COPY --from steps and what follows them).
            assert partial.cached() == 1 and partial.ran() == 6, partial.lines
            assert rebuilt != built
            stack.up()
            assert stack.exec("app", ["hello"]).stdout == b"hello from stage two\n"
        finally:
            stack.down()


def test_dockerignore_is_respected(api_env: Path) -> None:
    dockerfile = "FROM $IMAGE\nCOPY . /app\nRUN ls -a /app > /listing\n"
    name = _project(
        api_env,
        dockerfile,
        files={
            ".dockerignore": "secret.txt\n*.log\n!keep.log\n",
            "secret.txt": "nope\n",
            "a.log": "x\n",
            "keep.log": "kept\n",
            "main.txt": "main\n",
        },
    )
    with Stack.load(project_name=name) as stack:
        stack.build()
        stack.up()
        try:
            listing = stack.exec("app", ["cat", "/listing"]).stdout.decode().split()
            assert "main.txt" in listing and "keep.log" in listing
            assert "secret.txt" not in listing and "a.log" not in listing
            (api_env / "secret.txt").write_text("changed and ignored\n")
            lines = Lines()
            stack.build(progress=lines)
            assert lines.ran() == 0, lines.lines
        finally:
            stack.down()


def test_run_failure_is_located_and_leaves_image_and_containers(api_env: Path) -> None:
    name = _project(api_env, "FROM $IMAGE\nRUN echo one > /one\n")
    with Stack.load(project_name=name) as stack:
        (image_id,) = stack.build().values()
        stack.up()
        try:
            before = stack.container("app")
            (api_env / "Dockerfile").write_text(
                f"FROM {IMAGE}\nRUN echo one > /one\n# a comment\nRUN echo boom-output >&2 && exit 3\n"
            )
            with pytest.raises(BuildFailed) as failed:
                stack.build()
            error = failed.value
            assert error.line == 4 and "exit code 3" in str(error)
            assert "RUN echo boom-output" in str(error) and "boom-output" in error.tail
            assert "Dockerfile:4" in str(error)
            after = stack.container("app")
            assert after.id == before.id and after.state == before.state
            images = {ref: i.id for i in stack.backend.list_images() for ref in i.refs}
            assert images[f"{name}-app:latest"] == image_id
            (api_env / "Dockerfile").write_text(f"FROM {IMAGE}\nFROBNICATE now\n")
            with pytest.raises(DockerfileError):
                stack.build()
        finally:
            stack.down()


def test_secrets_stay_out_of_layers_and_cache_mounts_persist(api_env: Path, engine_root: Path) -> None:
    token = uuid.uuid4().hex
    dockerfile = """\
FROM $IMAGE
RUN --mount=type=secret,id=token test "$(cat /run/secrets/token)" = "$(cat /run/secrets/token)" \\
    && wc -c < /run/secrets/token > /token-length
RUN --mount=type=cache,target=/var/cache/counter \
    sh -c 'echo run >> /var/cache/counter/runs; wc -l < /var/cache/counter/runs > /runs'
"""
    service = (
        "services:\n  app:\n    build:\n      context: .\n      secrets: [token]\n"
        "    init: true\n    command: [sleep, '1h']\nsecrets:\n  token:\n    file: ./token.txt\n"
    )
    name = _project(api_env, dockerfile, service, files={"token.txt": token})
    with Stack.load(project_name=name) as stack:
        stack.build()
        stack.build(no_cache=True)
        stack.up()
        try:
            assert stack.exec("app", ["cat", "/token-length"]).stdout.strip() == b"32"
            assert stack.exec("app", ["test", "-e", "/run/secrets/token"]).exit_code != 0
            runs = int(stack.exec("app", ["cat", "/runs"]).stdout)
            assert runs >= 2  # the second build saw the first one's cache-mount contents
            assert stack.exec("app", ["test", "-e", "/var/cache/counter/runs"]).exit_code != 0
        finally:
            stack.down()
    found = subprocess.run(
        ["grep", "-rl", token, str(engine_root / "images")], capture_output=True, text=True, check=False
    )
    assert found.stdout == "", f"the secret is in the store: {found.stdout}"


@pytest.fixture(scope="module")
def debian_base(engine_root: Path) -> str:
    """debian:bookworm in the module's store through `stackup image bootstrap` (debootstrap from
    this machine's apt mirror, cached per machine under /var/cache/stackup after the first time)."""
    env = {**os.environ, "STACKUP_ROOT": str(engine_root)}
    ref = "debian:bookworm"
    command = [sys.executable, "-m", "stackup", "image", "bootstrap", ref]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return ref


def test_up_build_from_debian_installs_a_package(api_env: Path, debian_base: str) -> None:
    dockerfile = f"""\
FROM {debian_base}
RUN apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*
CMD ["sleep", "3600"]
"""
    name = _project(api_env, dockerfile, "services:\n  app:\n    build: .\n    init: true\n")
    with Stack.load(project_name=name) as stack:
        stack.up(build=True)
        try:
            out = stack.exec("app", ["sh", "-c", "echo '{\"a\": 41}' | jq '.a + 1'"])
            assert out.exit_code == 0 and out.stdout == b"42\n", out
        finally:
            stack.down()
