"""Signal a container and learn its exit through pidfds: no runtime process, no polling.

Why: a stop used to run the OCI runtime four or five times (state, kill, state, delete) and poll
for conmon's exit file every 5 ms. The kernel can do all of it: `pidfd_open` on the container's
init and on its conmon, `pidfd_send_signal` for the stop signal (what `<runtime> kill` does for
a running container: one `kill(2)` of init), and `poll` on the pidfds, which become readable
when the process exits. conmon writes the exit file and then exits, so "conmon's pidfd is
readable" means "the exit file is there", learned without a single stat in a loop.

Identity: a pid read from a file or the record may have been reused. Each pid is checked after
its pidfd is open (conmon: its command line names the container; init: conmon is its parent),
and the check only counts while the pidfd's process is still alive, since until it exits its
pid cannot belong to anyone else. A pid that fails the check is "unknown", and the caller falls
back to asking the runtime.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
from dataclasses import dataclass
from pathlib import Path


def _open(pid: int) -> int | None:
    """A pidfd for `pid`, or None if no such process (exited and reaped)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def exited(fd: int, timeout_s: float | None = 0.0) -> bool:
    """Wait up to `timeout_s` (None: for ever) for the pidfd's process to exit; whether it has."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if timeout_s is None:
        return bool(poller.poll())
    return bool(poller.poll(max(0, math.ceil(timeout_s * 1000))))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def _ppid(pid: int) -> int | None:
    stat = _read(Path(f"/proc/{pid}/stat"))
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and parentheses
    return int(fields[1]) if len(fields) > 1 else None


@dataclass
class Watch:
    """Pidfds of one container's conmon and init; `None` for a process that is already gone.

    A context manager: the pidfds are closed on exit.
    """

    conmon: int | None
    init: int | None

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: object) -> None:
        for fd in (self.conmon, self.init):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def signal(self, sig: int) -> bool:
        """Send `sig` to init; False if init is already gone."""
        if self.init is None:
            return False
        try:
            signal.pidfd_send_signal(self.init, sig)
        except ProcessLookupError:
            return False
        return True

    def wait_init(self, timeout_s: float | None) -> bool:
        """Whether init has exited within `timeout_s`."""
        return self.init is None or exited(self.init, timeout_s)

    def wait_conmon(self, timeout_s: float | None) -> bool:
        """Whether conmon (which writes the exit file, then exits) is gone within `timeout_s`."""
        return self.conmon is None or exited(self.conmon, timeout_s)


def watch(container_id: str, bundle: Path, init_pid: int | None) -> Watch | None:
    """Pidfds for the container's conmon and init, identities checked; None when unsure.

    None means: conmon's pid file is missing or names another process, or `init_pid` is not
    conmon's child; the caller then asks the runtime instead. Without `init_pid` only conmon is
    watched. A conmon that has exited is `Watch(conmon=None, init=None)`: the exit file is
    written (or never will be).
    """
    text = _read(bundle / "conmon.pid")
    if text is None or not text.strip().isdigit():
        return None
    conmon_pid = int(text)
    conmon_fd = _open(conmon_pid)
    if conmon_fd is None:
        return Watch(conmon=None, init=None)
    found = Watch(conmon=conmon_fd, init=None)
    cmdline = _read(Path(f"/proc/{conmon_pid}/cmdline")) or ""
    if container_id not in cmdline.split("\0") and not exited(conmon_fd):
        found.__exit__()
        return None
    if exited(conmon_fd):
        os.close(conmon_fd)
        return Watch(conmon=None, init=None)
    if init_pid is None:
        return found
    init_fd = _open(init_pid)
    found.init = init_fd
    if init_fd is not None and _ppid(init_pid) != conmon_pid and not exited(init_fd):
        found.__exit__()
        return None
    return found
