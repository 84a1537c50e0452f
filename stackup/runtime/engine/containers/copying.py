"""`cp` into and out of a container, running or not (`PUT`/`GET /containers/{ref}/archive`).

Which directory stands for the container's `/`:
- a container with a process (running, or created and waiting to start) is copied through
  `/proc/<pid>/root`: the container's own mount namespace, so a path under a named volume, a
  bind mount or a tmpfs lands exactly where the container sees it, as in Docker.
- a stopped container has no process and, here, no mounted rootfs (it is unmounted at exit).
  Its overlay is mounted for the copy and unmounted after, under the container's lock so a
  concurrent start waits; the overlay's upper directory is never written directly, since
  overlayfs forbids changing a layer behind a mounted overlay and would need whiteouts handled
  by hand otherwise. Its mounts are not there, so the destination is resolved against them by
  path: under a volume or bind mount target it goes to the mount's source, as Docker does;
  under a tmpfs target there is nothing to write to (the tmpfs died with the process).
  Archive members below the destination that cross into another mount stay in the rootfs.

Everything within the chosen directory goes through `files.RootDir` (no escape by symlinks).
Extracted entries belong to root (uid 0, gid 0) unless `keep_owner`, as `docker cp` without `-a`.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO

from stackup.errors import Conflict, InvalidRequest, RuntimeFailure
from stackup.runtime.engine.containers import files, syncing
from stackup.runtime.engine.containers.config import ContainerConfig
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.models import MountKind
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerRecord, ContainerStatus


def container_path(path: str) -> str:
    """An absolute, normalised container path (`..` stops at `/`)."""
    if not path.startswith("/"):
        raise InvalidRequest(f"container path must be absolute: {path!r}")
    resolved: list[str] = []
    for part in files.parts(path):
        if part == "..":
            if resolved:
                resolved.pop()
        else:
            resolved.append(part)
    return "/" + "/".join(resolved)


def _live_pid(record: ContainerRecord) -> int | None:
    if record.status not in (ContainerStatus.RUNNING, ContainerStatus.CREATED) or not record.pid:
        return None
    return record.pid if os.path.isdir(f"/proc/{record.pid}/root") else None


class ContainerFiles:
    """Copies for the container manager; `locked` is the manager's per-container lock."""

    def __init__(self, paths: EnginePaths, images: ImageStore) -> None:
        self.paths = paths
        self.images = images

    @contextlib.contextmanager
    def root_of(self, record: ContainerRecord, path: str) -> Iterator[tuple[files.RootDir, str]]:
        """(the directory standing for `/`, `path` within it) for `record` at `path`; the caller
        holds the container's lock (a stopped container's rootfs is mounted meanwhile)."""
        path = container_path(path)
        pid = _live_pid(record)
        if pid is not None:
            with files.RootDir(f"/proc/{pid}/root") as root:
                yield root, path
            return
        config = ContainerConfig.model_validate(record.config)
        for mount in sorted(config.mounts, key=lambda m: len(m.target.parts), reverse=True):
            target = str(mount.target)
            if path == target or PurePosixPath(path).is_relative_to(mount.target):
                if mount.kind is MountKind.TMPFS or mount.source is None:
                    raise Conflict(
                        f"{path} is on the tmpfs at {target}, which exists only while the container runs"
                    )
                with files.RootDir(str(mount.source)) as root:
                    yield root, "/" + str(PurePosixPath(path).relative_to(mount.target))
                return
        bundle = self.paths.container(record.id)
        mount_rootfs(self.images.layer_dirs(self.images.get(record.image_id)), bundle.upper, bundle.work,
                     bundle.rootfs)  # fmt: skip
        try:
            with files.RootDir(str(bundle.rootfs)) as root:
                yield root, path
        finally:
            unmount_rootfs(bundle.rootfs)

    def copy_to(self, record: ContainerRecord, path: str, archive: IO[bytes], *, keep_owner: bool) -> None:
        """Extract the tar stream `archive` into the directory `path` (which must exist)."""
        with self.root_of(record, path) as (root, inner):
            try:
                with tarfile.open(fileobj=archive, mode="r|*") as tar:
                    files.extract(root, inner, tar, owner=None if keep_owner else (0, 0))
            except (tarfile.TarError, EOFError) as exc:
                raise InvalidRequest(f"cannot extract the archive into {path}: {exc}") from exc
            except OSError as exc:
                raise RuntimeFailure(f"cannot extract the archive into {path}: {exc.strerror}") from exc

    def copy_from(self, record: ContainerRecord, path: str, out: IO[bytes]) -> None:
        """Write `path` as a tar stream into `out`."""
        with self.root_of(record, path) as (root, inner):
            try:
                files.pack(root, inner, out)
            except OSError as exc:
                raise RuntimeFailure(f"cannot read {path} from the container: {exc.strerror}") from exc

    def sync(self, record: ContainerRecord, path: str, archive: IO[bytes]) -> syncing.SyncCounts:
        """Apply a batch of changes (files to write, whiteouts to delete) under directory `path`,
        made if missing (see `syncing.py`)."""
        with self.root_of(record, path) as (root, inner):
            try:
                with tarfile.open(fileobj=archive, mode="r|*") as tar:
                    return syncing.apply(root, inner, tar)
            except (tarfile.TarError, EOFError) as exc:
                raise InvalidRequest(f"cannot sync into {path}: {exc}") from exc
            except OSError as exc:
                raise RuntimeFailure(f"cannot sync into {path}: {exc.strerror} ({exc.filename})") from exc
