"""Which OCI runtime the CLI-started engine drives, end to end.

The engine picks crun when installed (runc otherwise, or as `STACKUP_OCI_RUNTIME` says; the
harness passes that variable through, so the suite can be run once per runtime). The runtime
is reported by `engine status`, keeps its state under the engine's root, and a stack survives
an engine killed with SIGKILL and comes down completely afterwards.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from stackup.runtime.engine.containers import ociruntime
from tests.e2e.conftest import OCI_RUNTIME, Stackup

pytestmark = pytest.mark.engine


def test_engine_reports_and_uses_the_chosen_runtime(stackup: Stackup, tmp_path: Path) -> None:
    expected = ociruntime.configured(environ={ociruntime.ENV: OCI_RUNTIME})
    cwd = stackup.project(tmp_path, """
services:
  app:
    image: $IMAGE
    network_mode: none
    mem_limit: 64m
    command: ["sleep", "3600"]
""")  # fmt: skip
    stackup.run("up", "-d", cwd=cwd)
    status = json.loads(stackup.run("engine", "status", "--format", "json").stdout)
    assert status["info"]["oci_runtime"].startswith(f"{expected.name} version")
    state_root = stackup.root / "run" / expected.name.value
    assert len([p for p in state_root.iterdir() if not p.name.startswith(".")]) == 1
    limit = stackup.run(
        "exec", "-T", "app", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        cwd=cwd,
    )  # fmt: skip
    assert limit.stdout.strip() == str(64 * 2**20)
    os.kill(int((stackup.root / "run" / "stackupd.pid").read_text()), signal.SIGKILL)
    stackup.run("down", "-t", "1", cwd=cwd)  # a new engine re-adopts, then removes everything
    assert [p.name for p in state_root.iterdir() if not p.name.startswith(".")] == []
