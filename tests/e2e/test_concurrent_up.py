"""Two `stackup up` of one project at once: the second waits for the first (the engine's project
lock) and finds nothing left to do; never a duplicate container. Ten `up` at once, same result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
