"""A container's filesystem out of the engine: `commit` (its changes as a new image layer) and
`export` (its whole root filesystem as one tar, as `docker export`).

Both read the overlay's upper directory in place, without pausing the container: a file
written during the read may come out half-written, as with `docker commit --pause=false`.
`export` does not read `/proc/<pid>/root` (that would include volumes, binds and the kernel's
filesystems); it mounts a second, private overlay of the image's layers with the container's
upper as the topmost lower and a throwaway upper, so whiteouts are applied by the kernel and
nothing the container sees is touched. Volumes are not part of either, as in Docker.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.engine.images.diff import pack_upper
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.images import Image
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerRecord


def _created_by(record: ContainerRecord) -> str:
    args = record.config.get("args") or []
    return " ".join(str(a) for a in args) or f"stackup commit {record.name}"


def commit(paths: EnginePaths, images: ImageStore, record: ContainerRecord, ref: str | None,
           *, comment: str = "") -> Image:
    """A new image: the container's image plus one layer holding its upper directory.

    The config is the image's (the container's own command, env and so on are not folded in).
    """
    upper = paths.container(record.id).upper
    with tempfile.TemporaryDirectory(dir=paths.tmp, prefix="commit-") as tmp:
        layer = Path(tmp) / "layer.tar"
        with open(layer, "wb") as out:
            if upper.is_dir():
                pack_upper(upper, out)
            else:  # never started: no changes, an empty layer as Docker makes
                tarfile.open(fileobj=out, mode="w|").close()
        return images.add_layer(record.image_id, layer, ref, created_by=_created_by(record), comment=comment)


def export(paths: EnginePaths, images: ImageStore, record: ContainerRecord, out: IO[bytes]) -> None:
    """Write the container's root filesystem (image layers + its changes) as a tar into `out`."""
    lowers = images.layer_dirs(images.get(record.image_id))
    upper = paths.container(record.id).upper
    if upper.is_dir():
        lowers.append(upper)
    with tempfile.TemporaryDirectory(dir=paths.tmp, prefix="export-") as tmp:
        target = Path(tmp) / "merged"
        mount_rootfs(lowers, Path(tmp) / "upper", Path(tmp) / "work", target)
        try:
            _pack_tree(target, out)
        except OSError as exc:
            raise RuntimeFailure(f"cannot export container {record.name}: {exc}") from exc
        finally:
            unmount_rootfs(target)
            shutil.rmtree(Path(tmp) / "work", ignore_errors=True)


def _pack_tree(root: Path, out: IO[bytes]) -> None:
    """Top-level names without a `./` prefix, sorted, owners numeric only (as `docker export`)."""

    def scrub(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(root)):
            tar.add(root / name, arcname=name, recursive=True, filter=scrub)
