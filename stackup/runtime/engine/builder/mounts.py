"""Filesystems a build step works in: an overlay over the layers so far, and a RUN's `--mount`s.

`Workspace` is one overlay mount (lower: the layer chain so far, upper: fresh) under
`$STACKUP_ROOT/builder/work/`; a RUN's container uses its directory as the OCI bundle, a COPY
writes into its merged view; afterwards its upper dir is the step's layer.

RUN mounts:
- cache: a directory under `$STACKUP_ROOT/builder/cache-mounts/`, one per `id` (default: the
  target), shared by every build of this engine and kept between builds (`builder prune` keeps
  them too; remove the directory to drop them). `sharing` is treated as `shared`, `from` seeds
  are not supported (a located error says so).
- secret: the host file named by the build request (or the value it carries, for a secret from
  the caller's environment), copied with the mount's mode and owner into
  the workspace directory (outside the rootfs) and bound read-only; `env=` puts it in the
  process's environment instead. Never in a layer: the mount point the runtime creates in the
  upper dir is removed before the layer is taken (as for every other mount point it made).
- tmpfs: a tmpfs. bind: from the context or from another stage or image, read-only unless
  `rw`, and then onto a scratch copy, so the writes are discarded as BuildKit discards them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from stackup.build.dockerfile.instructions import Mount, MountType
from stackup.runtime.engine.containers.config import Mount as OciMount
from stackup.runtime.engine.containers.config import rootfs_path
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.wire.models import MountKind
from stackup.runtime.wire.paths import EnginePaths


def builder_dir(paths: EnginePaths) -> Path:
    return paths.root / "builder"


class Workspace:
    """An overlay of `lowers` (lowest first) with a fresh upper; `close()` unmounts and deletes."""

    def __init__(self, paths: EnginePaths, lowers: list[Path]) -> None:
        base = builder_dir(paths) / "work"
        base.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(dir=base, prefix="w"))
        self.upper, self.work, self.rootfs = self.dir / "upper", self.dir / "work", self.dir / "rootfs"
        self.mounted = False
        try:
            mount_rootfs(lowers, self.upper, self.work, self.rootfs)
            self.mounted = True
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def unmount(self) -> None:
        if self.mounted:
            unmount_rootfs(self.rootfs)
            self.mounted = False

    def close(self) -> None:
        self.unmount()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass
class RunMounts:
    """The OCI mounts of one RUN, the env its secrets add, and what to remove from the upper dir."""

    mounts: list[OciMount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    keep: list[Path] = field(default_factory=list)


def _cache_dir(paths: EnginePaths, mount: Mount) -> Path:
    name = hashlib.sha256((mount.cache_id or mount.target).encode()).hexdigest()[:32]
    directory = builder_dir(paths) / "cache-mounts" / name
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, mount.mode if mount.mode is not None else 0o755)
        os.chown(directory, mount.uid or 0, mount.gid or 0)
    return directory


def prepare(
    paths: EnginePaths,
    ws: Workspace,
    mounts: tuple[Mount, ...],
    sources: list[Path | None],
    *,
    secrets: dict[str, str],
    secret_values: Mapping[str, str] | None = None,
    fail: Callable[[str], Exception],
) -> RunMounts:
    """Resolve each `--mount` to a host source. `sources[i]` is the host directory a bind or
    cache `from=` reads (a mounted stage rootfs or the context root)."""
    out = RunMounts()
    scratch = ws.dir / "mounts"
    scratch.mkdir(exist_ok=True)
    for number, (mount, source_root) in enumerate(zip(mounts, sources, strict=True)):
        target = PurePosixPath(mount.target if mount.target.startswith("/") else f"/{mount.target}")
        if mount.type is MountType.CACHE:
            if mount.from_:
                raise fail("--mount=type=cache,from=... (a seeded cache) is not supported by this builder")
            out.mounts.append(OciMount(kind=MountKind.BIND, target=target, source=_cache_dir(paths, mount)))
        elif mount.type is MountType.TMPFS:
            out.mounts.append(OciMount(kind=MountKind.TMPFS, target=target, tmpfs_size=mount.size or None))
        elif mount.type is MountType.SECRET:
            secret_file = secrets.get(mount.secret_id)
            value = (secret_values or {}).get(mount.secret_id)
            if value is None and (secret_file is None or not os.path.isfile(secret_file)):
                if mount.required:
                    raise fail(f"secret {mount.secret_id} is required but was not provided")
                continue
            copy = scratch / f"secret-{number}"
            if value is not None:
                copy.touch(mode=0o600)
                copy.write_bytes(value.encode("utf-8", "surrogateescape"))
            else:
                assert secret_file is not None
                shutil.copyfile(secret_file, copy)
            os.chown(copy, mount.uid or 0, mount.gid or 0)
            os.chmod(copy, mount.mode if mount.mode is not None else 0o400)
            if mount.env:
                out.env[mount.env] = copy.read_text(errors="surrogateescape")
                if not mount.target or mount.target == f"/run/secrets/{mount.secret_id}":
                    continue
            out.mounts.append(OciMount(kind=MountKind.BIND, target=target, source=copy, read_only=True))
        else:
            if source_root is None:
                raise fail("bind mount has no source")
            host = rootfs_path(source_root, mount.source or "/")
            if not host.exists():
                raise fail(f"bind mount source {mount.source or '/'} does not exist")
            if not mount.readonly:
                copy = scratch / f"bind-{number}"
                if host.is_dir():
                    shutil.copytree(host, copy, symlinks=True)
                else:
                    shutil.copy2(host, copy)
                host = copy
            else:
                out.keep.append(source_root)
            out.mounts.append(
                OciMount(kind=MountKind.BIND, target=target, source=host, read_only=mount.readonly)
            )
        out.targets.append(str(target))
    return out


def existing(rootfs: Path, targets: list[str]) -> set[str]:
    """Which mount targets (and their parents) exist in the rootfs before the step runs."""
    present: set[str] = set()
    for target in targets:
        path = PurePosixPath(target)
        for candidate in (path, *path.parents):
            if os.path.lexists(rootfs / str(candidate).lstrip("/")):
                present.add(str(candidate))
    return present


def remove_stubs(upper: Path, targets: list[str], present: set[str]) -> None:
    """Remove mount points the runtime created (and parents it made), so no step's layer carries
    an empty `/run/secrets/x` or cache directory. Content a mount's target had is left alone."""
    for target in targets:
        path = PurePosixPath(target)
        for candidate in (path, *path.parents):
            if str(candidate) == "/" or str(candidate) in present:
                break
            host = upper / str(candidate).lstrip("/")
            with contextlib.suppress(FileNotFoundError, OSError):
                if host.is_dir() and not host.is_symlink():
                    os.rmdir(host)  # only if empty
                else:
                    host.unlink()
