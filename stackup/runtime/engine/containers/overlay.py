"""Mount and unmount a container's rootfs: overlayfs over the image's layers plus a private upper.

The engine mounts the rootfs itself before `<runtime> create`, as Podman and containerd do, so the
container's writes land in `upper` where `stackup watch` can sync into them directly.

Two overlayfs limits shape this module. The whole option string must fit in one page (4096
bytes): with absolute layer paths of ~100 bytes that is about 40 layers, so longer stacks are
mounted from a directory of one-character symlinks by a child `mount` process whose working
directory is that directory (a chdir in this process would race the engine's other threads).
And overlayfs needs at least one lower directory, so a scratch image gets an empty one.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

from stackup.errors import RuntimeFailure
from stackup.runtime.engine import linux

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# ":" separates lowerdirs and "," separates options; neither can be escaped reliably.
_FORBIDDEN = (":", ",")


def _options(lowers_top_first: list[str], upper: Path, work: Path) -> str:
    return f"lowerdir={':'.join(lowers_top_first)},upperdir={upper},workdir={work}"


def _check_path(path: Path) -> None:
    if any(ch in os.fspath(path) for ch in _FORBIDDEN):
        raise RuntimeFailure(f"cannot use {path} in an overlay mount: it contains ':' or ','")


def mount_rootfs(lower: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount overlayfs at `target`; `lower` is lowest first, as `ImageStore.layer_dirs` returns it.

    Idempotent: an overlay already mounted at `target` (an engine re-adopting a running container)
    is left as it is. `upper`, `work` and `target` are created; `upper` and `work` must share a
    filesystem.
    """
    for path in (*lower, upper, work, target):
        _check_path(path)
    for path in (upper, work, target):
        path.mkdir(parents=True, exist_ok=True)
    if _mounted_on(target) and linux.mount_fstype(target) == "overlay":
        return
    if not lower:
        empty = work.parent / f".{work.name}-empty"
        empty.mkdir(exist_ok=True)
        lower = [empty]
    data = _options([os.fspath(p) for p in reversed(lower)], upper, work)
    if len(data) < _PAGE_SIZE:
        try:
            linux.mount("overlay", target, "overlay", 0, data)
        except OSError as exc:
            raise RuntimeFailure(f"cannot mount the rootfs at {target}: {exc.strerror}") from exc
        return
    _mount_via_links(lower, upper, work, target)


def _mounted_on(target: Path) -> bool:
    """Whether something may be mounted at `target`: an overlay has a device of its own, so a
    target on its parent's device is not one. Saves reading the whole mount table (which grows
    with every container) for each new container's rootfs."""
    return os.stat(target).st_dev != os.stat(target.parent).st_dev


def _mount_via_links(lower: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Many layers: name each by a short relative symlink and mount from their directory."""
    links = work.parent / f".{work.name}-lowers"
    shutil.rmtree(links, ignore_errors=True)
    links.mkdir()
    try:
        names = []
        for number, path in enumerate(reversed(lower)):
            name = format(number, "x")
            os.symlink(path.absolute(), links / name)
            names.append(name)
        data = _options(names, upper.absolute(), work.absolute())
        if len(data) >= _PAGE_SIZE:
            raise RuntimeFailure(f"cannot mount {len(lower)} layers: too many for one overlay mount")
        result = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", data, os.fspath(target.absolute())],
            cwd=links, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeFailure(f"cannot mount the rootfs at {target}: {result.stderr.strip()}")
    finally:
        shutil.rmtree(links, ignore_errors=True)  # overlayfs holds the resolved dirs, not the links


def unmount_rootfs(target: Path) -> None:
    """Unmount the rootfs; a target that is not mounted (or gone) is fine, a busy one is detached."""
    try:
        linux.umount(target, 0)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return
        if exc.errno != errno.EBUSY:
            raise RuntimeFailure(f"cannot unmount the rootfs at {target}: {exc.strerror}") from exc
        try:
            linux.umount(target, linux.MNT_DETACH)
        except OSError as detach_exc:
            raise RuntimeFailure(
                f"cannot unmount the rootfs at {target}: {detach_exc.strerror}") from detach_exc
