"""`stackup build` through the CLI on the real engine: the shortcut (`cli/buildfast.py`) sends the
recorded requests without loading the model, and every change that alters an image still builds.

Whether the shortcut answered is observed, not assumed: the CLI runs with
`PYTHONPROFILEIMPORTTIME=1`, and the full path is the one that imports `stackup.spec.loader`.
Each change test first proves the shortcut is armed (a no-op answered without the loader), then
changes one input and requires a step that really ran (`DONE`) and the effect in the image.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import IMAGE, Stackup

pytestmark = pytest.mark.engine

DOCKERFILE = f"""\
FROM {IMAGE}
ARG FLAVOUR=plain
WORKDIR /app
COPY . .
RUN echo "$FLAVOUR" > /flavour && cat /app/data.txt > /data
CMD ["cat", "/data"]
"""
COMPOSE = """\
services:
  app:
    network_mode: none
    build:
      context: .
      args:
        FROM_ENV: ${FROM_ENV:-unset}
"""


def _build(su: Stackup, cwd: Path, *args: str, env: dict[str, str] | None = None,
           code: int = 0) -> tuple[str, str, bool]:
    """(stdout, stderr without import timings, whether the shortcut answered)."""
    full = {**su.env(), "PYTHONPROFILEIMPORTTIME": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "stackup", *args], cwd=cwd, env=full, capture_output=True, text=True,
        check=False, timeout=180,
    )
    assert proc.returncode == code, proc.stderr[-3000:]
    imports = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    rest = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))
    loaded = any(re.search(r"\|\s+stackup\.spec\.loader$", line) for line in imports)
    return proc.stdout, rest, not loaded


def _image(stdout: str) -> str:
    return stdout.strip().split(": ", 1)[1]


def _content(su: Stackup, cwd: Path, path: str) -> str:
    """A file of the service's current image, read by a one-off container."""
    return su.run("run", "--rm", "--no-deps", "--entrypoint", "cat", "app", path, cwd=cwd).stdout


@pytest.fixture
def project(stackup: Stackup, tmp_path: Path) -> Path:
    directory = stackup.project(tmp_path, COMPOSE, prefix="bld")
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "data.txt").write_text("one\n")
    (directory / "notes.md").write_text(f"read by COPY . . in {directory.name}\n")  # unique layers
    return directory


def _armed(su: Stackup, cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Build, then prove the next identical build is answered by the shortcut; the image id."""
    first, _, _ = _build(su, cwd, "build", *args, env=env)
    again, err, short = _build(su, cwd, "build", *args, env=env)
    assert short, f"the shortcut did not answer a no-op build:\n{err}"
    assert again == first and "CACHED" in err and " DONE " not in err, err
    return _image(again)


def _rebuilt(su: Stackup, cwd: Path, before: str, *args: str, env: dict[str, str] | None = None) -> str:
    out, err, _ = _build(su, cwd, "build", *args, env=env)
    assert " DONE " in err, f"nothing was rebuilt:\n{err}"
    after = _image(out)
    assert after != before
    return after


def test_a_failing_step_through_the_shortcut_is_reported_like_the_full_path(
    stackup: Stackup, project: Path
) -> None:
    before = _armed(stackup, project)
    (project / "Dockerfile").write_text(DOCKERFILE + "RUN echo boom-output >&2 && exit 3\n")
    _, err, short = _build(stackup, project, "build", code=1)
    assert short, err
    assert "Dockerfile:7" in err and "exit code 3" in err and "boom-output" in err, err
    assert f"{project.name}-app:latest" in stackup.run("image", "ls", cwd=project).stdout
    (project / "Dockerfile").write_text(DOCKERFILE + "FROBNICATE now\n")
    _, err, short = _build(stackup, project, "build", code=3)
    assert short and "Dockerfile:7" in err and "FROBNICATE" in err.upper(), err
    (project / "Dockerfile").write_text(DOCKERFILE)
    out, _, short = _build(stackup, project, "build")
    assert short and _image(out) == before


def test_noop_build_is_answered_without_loading_and_prints_like_the_full_path(
    stackup: Stackup, project: Path
) -> None:
    full_out, full_err, short = _build(stackup, project, "build")
    assert not short and " DONE " in full_err
    out, err, short = _build(stackup, project, "build")
    assert short and out == full_out
    assert [line.split()[-1] for line in err.splitlines()] == (
        ["/app", "CACHED", ".", "CACHED", "/data", "CACHED", f"{project.name}-app:latest"]
    ), err
    quiet, quiet_err, short = _build(stackup, project, "build", "-q")
    assert short and quiet == full_out.split(": ", 1)[1] and quiet_err == ""


def test_context_content_change_rebuilds_even_with_the_same_mtime(stackup: Stackup, project: Path) -> None:
    before = _armed(stackup, project)
    data = project / "data.txt"
    stat = data.stat()
    data.write_text("two\n")  # same size, mtime put back: only the content says it changed
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    _rebuilt(stackup, project, before)
    assert _content(stackup, project, "/data") == "two\n"


def test_dockerfile_change_rebuilds(stackup: Stackup, project: Path) -> None:
    before = _armed(stackup, project)
    (project / "Dockerfile").write_text(DOCKERFILE.replace('> /data', '> /data && echo extra >> /data'))
    _rebuilt(stackup, project, before)
    assert _content(stackup, project, "/data") == "one\nextra\n"


def test_build_arg_change_rebuilds(stackup: Stackup, project: Path) -> None:
    before = _armed(stackup, project, "--build-arg", "FLAVOUR=salty")
    assert _content(stackup, project, "/flavour") == "salty\n"
    after = _rebuilt(stackup, project, before, "--build-arg", "FLAVOUR=sweet")
    assert _content(stackup, project, "/flavour") == "sweet\n"
    # `--build-arg KEY` takes the environment's value: a new value is a new build
    env_arg = _armed(stackup, project, "--build-arg", "FLAVOUR", env={"FLAVOUR": "sour"})
    assert env_arg not in (before, after)
    _rebuilt(stackup, project, env_arg, "--build-arg", "FLAVOUR", env={"FLAVOUR": "bitter"})
    assert _content(stackup, project, "/flavour") == "bitter\n"


def test_variable_in_the_stack_file_change_rebuilds(stackup: Stackup, project: Path) -> None:
    (project / "Dockerfile").write_text(DOCKERFILE.replace("ARG FLAVOUR=plain", "ARG FROM_ENV"))
    before = _armed(stackup, project, env={"FROM_ENV": "a"})
    _rebuilt(stackup, project, before, env={"FROM_ENV": "b"})


def test_dockerignore_change_rebuilds(stackup: Stackup, project: Path) -> None:
    (project / ".dockerignore").write_text("notes.md\n")
    before = _armed(stackup, project)
    (project / "notes.md").write_text("ignored, so no rebuild\n")
    out, err, short = _build(stackup, project, "build")
    assert short and _image(out) == before and " DONE " not in err
    (project / ".dockerignore").write_text("")
    _rebuilt(stackup, project, before)
    assert _content(stackup, project, "/app/notes.md") == "ignored, so no rebuild\n"


def test_target_change_rebuilds(stackup: Stackup, project: Path) -> None:
    (project / "Dockerfile").write_text(
        f"FROM {IMAGE} AS one\nRUN echo one > /which\n\nFROM {IMAGE} AS two\nRUN echo two > /which\n"
    )
    (project / "compose.yaml").write_text(COMPOSE + "      target: one\n")
    before = _armed(stackup, project)
    (project / "compose.yaml").write_text(COMPOSE + "      target: two\n")
    _rebuilt(stackup, project, before)
    assert _content(stackup, project, "/which") == "two\n"


def test_base_image_change_rebuilds(stackup: Stackup, project: Path) -> None:
    base = f"{project.name}-base:latest"
    stackup.run("image", "tag", IMAGE, base)
    (project / "Dockerfile").write_text(f"FROM {base}\nRUN echo built > /built\n")
    before = _armed(stackup, project)
    # a new image under the base's name, built from another stack file
    (project / "base").mkdir()
    (project / "base" / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo new base > /base\n")
    (project / "base.yaml").write_text(f"services:\n  base:\n    build: ./base\n    image: {base}\n")
    stackup.run("-f", "base.yaml", "-p", f"{project.name}b", "build", cwd=project)
    _rebuilt(stackup, project, before)
    assert _content(stackup, project, "/base") == "new base\n"


def test_up_build_noop_is_answered_and_a_change_rebuilds(stackup: Stackup, project: Path) -> None:
    (project / "compose.yaml").write_text(COMPOSE + "    init: true\n    command: [sleep, '1h']\n")
    _build(stackup, project, "up", "-d", "--build")
    first = stackup.run("ps", "-q", cwd=project).stdout
    _, err, short = _build(stackup, project, "up", "-d", "--build")
    assert short and "up to date" in err, err
    (project / "data.txt").write_text("changed\n")
    _, err, short = _build(stackup, project, "up", "-d", "--build")
    assert not short, err
    assert stackup.run("ps", "-q", cwd=project).stdout != first
    assert stackup.run("exec", "app", "cat", "/data", cwd=project).stdout == "changed\n"
