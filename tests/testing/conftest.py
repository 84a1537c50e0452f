"""The plugin's tests: one private engine (STACKUP_ROOT) for the session, with the busybox image.

The root is set in `os.environ` before any stack fixture runs (session scope, autouse) and again
for each test (the root conftest's `clean_environ` removes STACKUP_*), so the fixtures under test
and the pytest runs the tests start in subprocesses all talk to this engine.
"""

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


def pytest_configure(config: pytest.Config) -> None:
    if not (config.pluginmanager.has_plugin("stackup")
            or config.pluginmanager.has_plugin("stackup.testing.plugin")):  # fmt: skip
        config.pluginmanager.import_plugin("stackup.testing.plugin")


@pytest.fixture(scope="session", autouse=True)
def plugin_engine() -> Iterator[Path]:
    """A private engine with the test image; stopped and checked for leftover mounts afterwards."""
    if os.geteuid() != 0:
        pytest.fail("the plugin's tests run stacks on the real engine: they need root")
    root = Path(tempfile.mkdtemp(prefix="stackup-testing-"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STACKUP_ROOT", str(root))
        subprocess.run([sys.executable, "-m", "stackup", "image", "bootstrap", "busybox", IMAGE],
                       check=True, capture_output=True)  # fmt: skip
        try:
            yield root
        finally:
            subprocess.run([sys.executable, "-m", "stackup", "engine", "stop"], check=False,
                           capture_output=True)  # fmt: skip
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if str(root) in line.split()[1]]  # fmt: skip
    if not mounts:
        shutil.rmtree(root, ignore_errors=True)
    assert not mounts, f"the engine left mounts behind: {mounts}"


@pytest.fixture(autouse=True)
def plugin_engine_env(clean_environ: None, plugin_engine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put STACKUP_ROOT back for each test after the root conftest's `clean_environ` took it out,
    so function-scoped stacks and the pytest runs a test starts use the session's engine."""
    monkeypatch.setenv("STACKUP_ROOT", str(plugin_engine))
