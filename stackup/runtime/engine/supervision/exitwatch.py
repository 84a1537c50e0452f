"""Exit files as they appear: an inotify watch on conmon's exit directory.

Why: the exit directory is where every exit shows up (`monitor.py`), and polling it every 150 ms
cost the engine a database read per exited container per poll (a `down` of 50 containers made
it a tenth of the engine's CPU) and up to 150 ms before an unexpected exit was seen. conmon
writes `<exit-dir>/<id>` directly or through a temporary file renamed into place, so a
close-after-write or a rename into the directory is the event; names that are not container ids
(those temporary files) are ignored. An overflowed queue says "look at everything".

inotify through ctypes: the watch is one descriptor the monitor's thread waits on with
`select`, no dependency.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import select
import struct
from pathlib import Path
from types import TracebackType

_IN_CLOEXEC = os.O_CLOEXEC
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then the name, NUL-padded
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class ExitWatch:
    """An inotify watch on one directory; `wait` returns the container ids written there."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd = _libc().inotify_init1(_IN_CLOEXEC | _IN_NONBLOCK)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        mask = _IN_CLOSE_WRITE | _IN_MOVED_TO
        if _libc().inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch({directory}): {os.strerror(err)}")
        self._fd = fd

    def __enter__(self) -> ExitWatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def wait(self, timeout_s: float) -> set[str] | None:
        """The ids whose exit file was written, waiting at most `timeout_s` for the first one
        (an empty set when none came); None when the kernel dropped events (look at them all)."""
        if not select.select([self._fd], [], [], max(0.0, timeout_s))[0]:
            return set()
        ids: set[str] = set()
        overflow = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            offset = 0
            while offset + _EVENT.size <= len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0").decode(
                    errors="replace"
                )
                offset += _EVENT.size + length
                if mask & _IN_Q_OVERFLOW:
                    overflow = True
                elif _CONTAINER_ID.fullmatch(name):
                    ids.add(name)
        return None if overflow else ids
