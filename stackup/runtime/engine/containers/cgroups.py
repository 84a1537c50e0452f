"""A container's cgroups on this machine's layout, read and removed without the runtime's help.

The development and CI machines run *hybrid* cgroups: one cgroup-v1 hierarchy per controller
(`/sys/fs/cgroup/memory`, `.../pids`, `cpu` and `cpuacct` even as separate mounts) plus cgroup2 at
`/sys/fs/cgroup/unified`. runc creates the container's directory (`cgroupsPath`) in every one of
them; crun, which runs without the cgroup2 mount there (`ociruntime.py`), in the v1 ones. The
runtime's `delete` removes them in the normal case, but a crashed create or a killed test can
leave them, and the engine-owned parent (`ContainerConfig.cgroup_parent`) is never removed by
the runtime at all, so cleanup lives here. Mount points are read from /proc/self/mountinfo rather than
assumed, so a pure cgroup2 machine works too (every controller maps to the one unified mount).
"""

from __future__ import annotations

import errno
import functools
import os
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

_UNIFIED = "unified"
#: Super options of a v1 cgroup mount that are not controller names.
_NOT_CONTROLLERS = ("relatime", "noatime", "xattr", "release_agent", "clone_children", "noprefix")


class CgroupLimits(BaseModel):
    """The limits the kernel actually applied; None means unlimited (or the controller is absent)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_limit: int | None
    pids_max: int | None
    cpu_quota_us: int | None
    cpu_period_us: int | None


def hierarchies(mountinfo: Path | None = None) -> dict[str, tuple[Path, str]]:
    """Controller name -> (mount point, mount root). The cgroup2 mount is keyed `unified`.

    v1 mounts are keyed by each controller in their super options (`cpu`, `memory`,
    `name=systemd`, ...); a mount of several controllers appears once per controller.
    This process's own table is read once: cgroup hierarchies are mounted at boot, while the
    table grows with every container's mounts (reading it per removal was a sixth of `down`).
    """
    return dict(_own_hierarchies() if mountinfo is None else _read_hierarchies(mountinfo))


@functools.cache
def _own_hierarchies() -> dict[str, tuple[Path, str]]:
    return _read_hierarchies(Path("/proc/self/mountinfo"))


def _read_hierarchies(mountinfo: Path) -> dict[str, tuple[Path, str]]:
    found: dict[str, tuple[Path, str]] = {}
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, super_opts = fields[sep + 1], fields[sep + 3]
        root, mount_point = fields[3], Path(fields[4])
        if fstype == "cgroup2":
            found.setdefault(_UNIFIED, (mount_point, root))
        elif fstype == "cgroup":
            for opt in super_opts.split(","):
                if opt not in ("rw", "ro") and not opt.startswith(_NOT_CONTROLLERS):
                    found.setdefault(opt, (mount_point, root))
    return found


def _join(mount: tuple[Path, str], cgroup_path: str) -> Path:
    mount_point, root = mount
    relative = cgroup_path
    if root != "/" and (relative == root or relative.startswith(root + "/")):
        relative = relative[len(root) :]
    return mount_point / relative.lstrip("/")


def cgroup_dirs(cgroup_path: str) -> list[Path]:
    """Every distinct existing directory of `cgroup_path` across the hierarchies."""
    seen: dict[Path, None] = {}
    for mount in hierarchies().values():
        path = _join(mount, cgroup_path)
        if path.is_dir():
            seen.setdefault(path, None)
    return list(seen)


def _read_int(path: Path, unlimited: tuple[str, ...] = ("max",)) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if text in unlimited:
        return None
    value = int(text)
    return None if value < 0 else value


#: v1 reports "no memory limit" as a huge page-aligned number rather than a word.
_V1_MEMORY_UNLIMITED = 1 << 62


def read_limits(cgroup_path: str) -> CgroupLimits:
    """The memory, pids and cpu limits of `cgroup_path`, from v1 files or their v2 equivalents."""
    mounts = hierarchies()
    if "memory" in mounts:
        memory = _read_int(_join(mounts["memory"], cgroup_path) / "memory.limit_in_bytes")
        if memory is not None and memory >= _V1_MEMORY_UNLIMITED:
            memory = None
        pids = _read_int(_join(mounts.get("pids", mounts["memory"]), cgroup_path) / "pids.max")
        cpu_dir = _join(mounts.get("cpu", mounts["memory"]), cgroup_path)
        quota = _read_int(cpu_dir / "cpu.cfs_quota_us")
        period = _read_int(cpu_dir / "cpu.cfs_period_us")
        return CgroupLimits(memory_limit=memory, pids_max=pids, cpu_quota_us=quota, cpu_period_us=period)
    unified = _join(mounts[_UNIFIED], cgroup_path)
    quota_text, _, period_text = (unified / "cpu.max").read_text().strip().partition(" ")
    return CgroupLimits(
        memory_limit=_read_int(unified / "memory.max"),
        pids_max=_read_int(unified / "pids.max"),
        cpu_quota_us=None if quota_text == "max" else int(quota_text),
        cpu_period_us=int(period_text) if period_text else None,
    )


def swap_accounting() -> bool:
    """Whether the v1 memory controller can limit swap (`memory.memsw.*`, needs swapaccount=1).

    runc refuses a `memory.swap` value it cannot apply, so the OCI layer asks first. On cgroup2
    swap is always accounted.
    """
    mounts = hierarchies()
    if "memory" not in mounts:
        return _UNIFIED in mounts
    return (_join(mounts["memory"], "/") / "memory.memsw.limit_in_bytes").exists()


def _rmdir_tree(path: Path, attempts: int) -> None:
    """Remove a cgroup directory and its child cgroups, deepest first (cgroupfs rmdir is per dir)."""
    try:
        children = sorted((p for p in path.iterdir() if p.is_dir()), reverse=True)
    except FileNotFoundError:
        return
    for child in children:
        _rmdir_tree(child, attempts)
    for attempt in range(attempts):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            # EBUSY: the last task is still exiting; the kernel frees it within milliseconds.
            if exc.errno != errno.EBUSY or attempt == attempts - 1:
                raise
            time.sleep(0.01)


def remove(cgroup_path: str, *, attempts: int = 50) -> None:
    """Remove `cgroup_path` (and any child cgroups) from every hierarchy; absent is fine."""
    for path in cgroup_dirs(cgroup_path):
        _rmdir_tree(path, attempts)


def remove_if_empty(cgroup_path: str) -> None:
    """Remove a parent cgroup in every hierarchy where it has no children left.

    Used for the engine-owned parent after its last container is deleted; a parent that still
    holds another container's cgroup is left alone (rmdir fails with EBUSY or ENOTEMPTY).
    """
    for path in cgroup_dirs(cgroup_path):
        try:  # another container's removal may take the parent away under us: absent is fine
            if any(p.is_dir() for p in path.iterdir()):
                continue
            os.rmdir(path)
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY, errno.ENOENT):
                raise
