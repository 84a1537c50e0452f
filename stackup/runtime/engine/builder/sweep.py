"""Workspaces of build steps an engine was killed in the middle of, removed at the next start.

Its own module, importing only the overlay helpers, so the engine's start does not load the
Dockerfile library that `mounts` needs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers.overlay import unmount_rootfs
from stackup.runtime.wire.paths import EnginePaths


def sweep_workspaces(paths: EnginePaths) -> list[str]:
    """Unmount and delete the workspaces of builds an engine was killed in the middle of (their
    overlays stay mounted on the host otherwise). Only while no build runs: at engine start."""
    base = paths.root / "builder" / "work"
    swept: list[str] = []
    for directory in sorted(base.iterdir()) if base.is_dir() else []:
        mounted = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
        try:
            for point in sorted((m for m in mounted if m.startswith(f"{directory}/")), reverse=True):
                unmount_rootfs(Path(point))  # a RUN's bind of the rootfs, then the overlay itself
        except RuntimeFailure:
            continue  # never delete through a mount; `stackup doctor` and the leak checks see it
        shutil.rmtree(directory, ignore_errors=True)
        swept.append(directory.name)
    return swept
