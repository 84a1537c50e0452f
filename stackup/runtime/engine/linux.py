"""Thin ctypes wrappers over the Linux syscalls the engine needs, and cgroup layout detection.

`os.unshare`/`os.setns` only exist from Python 3.12 and `os` has no `mount` at all, so the engine
calls libc directly. Every wrapper raises `OSError` carrying the real errno and the arguments, so a
failure reads `mount(overlay -> /x, type=overlay): [Errno 22] Invalid argument` instead of a bare -1.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
from enum import StrEnum
from functools import cache
from pathlib import Path

# clone(2) / unshare(2) namespace flags.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags.
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000

# umount2(2) flags.
MNT_FORCE = 0x1
MNT_DETACH = 0x2
MNT_EXPIRE = 0x4
UMOUNT_NOFOLLOW = 0x8

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_OCTAL = re.compile(r"\\([0-7]{3})")


class CgroupLayout(StrEnum):
    """How cgroups are mounted; decides which OCI runtime works (crun refuses `hybrid`)."""

    V1 = "v1"
    HYBRID = "hybrid"
    V2 = "v2"


@cache
def _libc() -> ctypes.CDLL:
    """Load libc once; `use_errno` makes `ctypes.get_errno()` reliable after each call."""
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                          ctypes.c_char_p]
    lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.unshare.argtypes = [ctypes.c_int]
    lib.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    return lib


def _check(result: int, what: str, path: str | None = None) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def _bytes(value: str | os.PathLike[str] | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | os.PathLike[str] | None, target: str | os.PathLike[str], fstype: str | None,
          flags: int = 0, data: str | None = None) -> None:
    """mount(2). `data` is the filesystem's option string (at most one page for most filesystems)."""
    result = _libc().mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data))
    _check(result, f"mount({source} -> {target}, type={fstype}, flags={flags:#x})", os.fspath(target))


def umount(target: str | os.PathLike[str], flags: int = MNT_DETACH) -> None:
    """umount2(2); lazy detach by default so a busy mount never blocks cleanup."""
    _check(_libc().umount2(_bytes(target), flags), f"umount({target}, flags={flags:#x})",
           os.fspath(target))


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread (CLONE_NEWNET, CLONE_NEWNS, ...)."""
    _check(_libc().unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace behind `fd` (e.g. an open /run/netns/<name>)."""
    _check(_libc().setns(fd, nstype), f"setns(fd={fd}, nstype={nstype:#x})")


def mount_fstype(target: str | os.PathLike[str], mountinfo: str | None = None) -> str | None:
    """Filesystem type of the topmost mount exactly at `target`, or None if it is not a mount point.

    Read from /proc/self/mountinfo rather than `os.path.ismount`, which cannot tell an overlay
    from a bind mount and misses mounts of a directory onto itself.
    """
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    wanted = os.path.realpath(target) if mountinfo is None else os.fspath(target)
    found: str | None = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        sep = fields.index("-")
        if _unescape(fields[4]) == wanted:
            found = fields[sep + 1]  # later lines are mounted on top: keep the last one
    return found


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal `\\040` and friends."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def cgroup_layout(mountinfo: str | None = None) -> CgroupLayout:
    """v2 when /sys/fs/cgroup is cgroup2, hybrid when v1 controllers sit beside a cgroup2 mount."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    root = os.fspath(_CGROUP_ROOT)
    v1 = v2 = False
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        fstype = fields[fields.index("-") + 1]
        point = _unescape(fields[4])
        if fstype == "cgroup2" and point == root:
            return CgroupLayout.V2
        if point.startswith(root + "/"):
            v1 = v1 or fstype == "cgroup"
            v2 = v2 or fstype == "cgroup2"
    return CgroupLayout.HYBRID if v1 and v2 else CgroupLayout.V1
