"""Watch tests on the real engine: one private STACKUP_ROOT per module, the busybox image in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

IMAGE = "stackup-test/busybox:latest"


@pytest.fixture(scope="module")
def engine_root() -> Iterator[Path]:
    """A private engine with the test image; stopped and checked for leftover mounts afterwards."""
    if os.geteuid() != 0:
        pytest.fail("watch tests on the real engine need root")
    root = Path(tempfile.mkdtemp(prefix="stackup-watch-"))
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


@pytest.fixture
def project_dir(engine_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """STACKUP_ROOT pointed at the module's engine; a fresh project directory as the cwd."""
    monkeypatch.setenv("STACKUP_ROOT", str(engine_root))
    directory = tmp_path / f"w{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory
