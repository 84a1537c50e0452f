"""An engine killed during a build step leaves that step's overlay mounted; the next engine's
start unmounts and deletes it (found by `bench/chaos.py --ops build`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackup.runtime.engine.builder.sweep import sweep_workspaces
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.wire.paths import EnginePaths


def _mounted(under: Path) -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(str(under))]  # fmt: skip


def test_interrupted_workspaces_are_unmounted_and_removed(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("mounting an overlay needs root")
    lower = tmp_path / "layer"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "kept").write_text("lower layer")
    step = tmp_path / "root" / "builder" / "work" / "wabc"
    mount_rootfs([lower], step / "upper", step / "work", step / "rootfs")
    try:
        (step / "rootfs" / "written").write_text("by the step")
        assert _mounted(step)
        assert sweep_workspaces(EnginePaths(tmp_path / "root")) == ["wabc"]
        assert not _mounted(tmp_path) and not step.exists()
        assert (lower / "etc" / "kept").read_text() == "lower layer"  # layers are never touched
        assert sweep_workspaces(EnginePaths(tmp_path / "root")) == []
    finally:
        if step.exists():
            unmount_rootfs(step / "rootfs")
