"""Where the engine keeps things under one `STACKUP_ROOT`.

Every path the engine touches derives from a single root, so two engines (or two test runs with
different roots) never share a socket, a lock, a layer or a run directory. Nothing here creates
files: callers `mkdir` what they write, which keeps this module pure and cheap to construct.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/stackup")
ROOT_ENV = "STACKUP_ROOT"

# Container ids become directory names: refuse anything that could climb out of containers/.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ContainerPaths:
    """One container's OCI bundle: config.json beside the overlay's upper, work and merged dirs."""

    dir: Path

    @property
    def config_json(self) -> Path:
        return self.dir / "config.json"

    @property
    def rootfs(self) -> Path:
        """The overlay mount point (`root.path` in config.json)."""
        return self.dir / "rootfs"

    @property
    def upper(self) -> Path:
        """The container's writable layer; `stackup watch` syncs straight into it."""
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        """overlayfs scratch space; must be on the same filesystem as `upper`."""
        return self.dir / "work"


@dataclass(frozen=True, slots=True)
class EnginePaths:
    """The layout of one engine root."""

    root: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EnginePaths:
        """`$STACKUP_ROOT`, else /var/lib/stackup; made absolute so a later chdir cannot move it."""
        env = os.environ if environ is None else environ
        value = env.get(ROOT_ENV) or os.fspath(DEFAULT_ROOT)
        return cls(Path(value).absolute())

    @property
    def images(self) -> Path:
        """The image store: records, tag index and locks (blobs and layers live beneath it)."""
        return self.root / "images"

    @property
    def blobs(self) -> Path:
        """Content-addressed blobs: `blobs/sha256/<hex>` (configs, manifests, layer tars)."""
        return self.images / "blobs"

    @property
    def layers(self) -> Path:
        """Unpacked layers by ChainID: `layers/<hex>/diff`, shared between images."""
        return self.images / "layers"

    @property
    def image_records(self) -> Path:
        """One JSON record per image id."""
        return self.images / "records"

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    def container(self, container_id: str) -> ContainerPaths:
        """The bundle of one container; the id must be a plain name, never a path."""
        if not _SAFE_ID.match(container_id):
            raise ValueError(f"invalid container id {container_id!r}")
        return ContainerPaths(self.containers / container_id)

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def state_db(self) -> Path:
        """SQLite (WAL) database of every resource the engine made."""
        return self.root / "state.db"

    @property
    def socket(self) -> Path:
        """stackupd's API socket (root-only)."""
        return self.root / "stackupd.sock"

    @property
    def run(self) -> Path:
        """Runtime state (pid files, crun/runc state, conmon sockets); under the root, not /run, so two
        roots never collide."""
        return self.root / "run"

    @property
    def tmp(self) -> Path:
        """Staging area on the store's filesystem, so finished work moves in with one rename."""
        return self.root / "tmp"
