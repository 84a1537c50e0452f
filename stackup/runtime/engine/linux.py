"""Thin ctypes wrappers over the Linux syscalls the engine needs, cgroup layout detection, and
running a call in a private mount namespace (`run_in_private_mounts`).

`os.unshare`/`os.setns` only exist from Python 3.12 and `os` has no `mount` at all, so the engine
calls libc directly. Every wrapper raises `OSError` carrying the real errno and the arguments, so a
failure reads `mount(overlay -> /x, type=overlay): [Errno 22] Invalid argument` instead of a bare -1.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import threading
from collections.abc import Callable, Collection
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

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


class PrivateMountsFailed(OSError):
    """The private mount namespace of `run_in_private_mounts` could not be set up."""


def run_in_private_mounts(
    action: Callable[[], _T],
    hide: str | os.PathLike[str],
    *,
    detach: Collection[str] = (),
    under: str = "/",
    keep: Collection[str] = (),
) -> _T:
    """Call `action` on a throwaway thread that has a mount namespace of its own without `hide`.

    Processes `action` starts there inherit that namespace (a thread's namespace, not the
    process's, is what a child gets), while the engine's other threads stay in the host's.
    Starting them with a `preexec_fn` instead would fork the whole engine (about 10 ms at 60 MB
    instead of a vfork's 1 ms) and run Python between fork and exec. The copy is made a
    recursive slave first, so nothing done in it propagates back to the host. Mounts of the
    `detach` filesystem types strictly below `under` are detached too, except the mount points
    in `keep` (all resolved paths), so a copy never pins what the host unmounts later. The
    namespace ends with the thread; nothing has to find its way back.
    """
    outcome: list[_T] = []
    failure: list[BaseException] = []
    prefix = under.rstrip("/") + "/"

    def enter_and_act() -> None:
        try:
            unshare(CLONE_NEWNS)  # implies CLONE_FS: this thread only
            mount(None, "/", None, MS_REC | MS_SLAVE)
            umount(hide, MNT_DETACH)
            if detach:
                for point in mount_points(detach, Path("/proc/thread-self/mountinfo").read_text()):
                    if point.startswith(prefix) and point not in keep:
                        with contextlib.suppress(OSError):  # gone with a parent, or just unmounted
                            umount(point, MNT_DETACH)
        except OSError as exc:
            failure.append(PrivateMountsFailed(exc.errno, exc.strerror, exc.filename))
            return
        try:
            outcome.append(action())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=enter_and_act, name="private-mounts", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def mount_points(fstypes: Collection[str], mountinfo: str | None = None) -> list[str]:
    """Mount points of the given filesystem types, from /proc/self/mountinfo (or `mountinfo`)."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    points: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if "-" in fields and fields[fields.index("-") + 1] in fstypes:
            points.append(_unescape(fields[4]))
    return points


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


def hybrid_cgroup2_mount(mountinfo: str | None = None) -> Path | None:
    """The cgroup2 mount beside v1 controllers (`/sys/fs/cgroup/unified`), if the layout is hybrid."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    if cgroup_layout(text) is not CgroupLayout.HYBRID:
        return None
    for line in text.splitlines():
        fields = line.split()
        if "-" in fields and fields[fields.index("-") + 1] == "cgroup2":
            point = _unescape(fields[4])
            if point.startswith(os.fspath(_CGROUP_ROOT) + "/"):
                return Path(point)
    return None
