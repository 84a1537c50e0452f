"""One private engine root per test module, with the busybox test image, shared by the test
packages that drive the engine through the API (tests/api, tests/dev)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

IMAGE = "stackup-test/busybox:latest"


def private_engine(prefix: str) -> Iterator[Path]:
    """A private engine with the test image; stopped and checked for leftover mounts afterwards."""
    if os.geteuid() != 0:
        pytest.fail("tests on the real engine need root")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "STACKUP_ROOT": str(root)}
    subprocess.run([sys.executable, "-m", "stackup", "image", "bootstrap", "busybox", IMAGE],
                   env=env, check=True, capture_output=True)
    try:
        yield root
    finally:
        subprocess.run([sys.executable, "-m", "stackup", "engine", "stop"], env=env, check=False,
                       capture_output=True)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if str(root) in line.split()[1]]
        if not mounts:
            shutil.rmtree(root, ignore_errors=True)
        assert not mounts, f"the engine left mounts behind: {mounts}"
