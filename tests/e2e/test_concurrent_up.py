"""Two `stackup up` of one project at once: the second waits for the first (the engine's project
lock) and finds nothing left to do; never a duplicate container. Ten `up` at once, same result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stackup.runtime.native.client import EngineClient
from tests.e2e.conftest import Stackup

pytestmark = pytest.mark.engine

STACK = """
services:
  db:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
  web:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
    depends_on: [db]
    deploy: {replicas: 2}
"""


def test_parallel_ups_of_one_project_make_each_container_once(stackup: Stackup, tmp_path: Path) -> None:
    project = stackup.project(tmp_path, STACK, prefix="conc")
    argv = [sys.executable, "-m", "stackup", "up", "-d"]
    procs = [
        subprocess.Popen(
            argv, cwd=project, env=stackup.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], outputs
    rows = json.loads(stackup.run("ps", "-a", "--format", "json", cwd=project).stdout)
    assert sorted(row["Name"] for row in rows) == sorted(
        [f"{project.name}-db-1", f"{project.name}-web-1", f"{project.name}-web-2"]
    )
    assert {row["State"] for row in rows} == {"running"}
    created = [
        line
        for out, err in outputs
        for line in (out + err).splitlines()
        if "service" in line and "Created" in line
    ]
    assert len(created) == 3, created  # one `up` made them; the others waited and found them up to date


def test_noop_up_waits_for_a_holder_too(stackup: Stackup, tmp_path: Path) -> None:
    """The no-op shortcut of `up -d` (cli/fastpath.py) reads the engine under the lock as well: a
    `down` in progress (or a dead client's last stop) must not be answered "up to date"."""
    project = stackup.project(tmp_path, STACK, prefix="noop")
    stackup.run("up", "-d", cwd=project)
    assert "inputs unchanged" in stackup.run("up", "-d", cwd=project).stderr  # the shortcut is armed
    argv = [sys.executable, "-m", "stackup", "up", "-d"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen(argv, cwd=project, env=stackup.env(), **pipes) as proc:  # type: ignore[call-overload]
        with (
            EngineClient(stackup.root / "stackupd.sock") as client,
            client.project_lock(project.name, holder="a slow down"),
            pytest.raises(subprocess.TimeoutExpired),
        ):
            proc.wait(timeout=3)
        _out, err = proc.communicate(timeout=120)  # released on leaving the block: it goes on
    assert proc.returncode == 0, err
    assert "up to date" in err  # (by the shortcut if the lock came within its 5 s, else the full path)
