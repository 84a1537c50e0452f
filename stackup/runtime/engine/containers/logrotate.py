"""Rotating a running container's log the way Docker's json-file driver does with `max-file` > 1.

conmon appends to `<bundle>/ctr.log` and never rotates (its `--log-size-max` truncates, see
`logpolicy.py`). So the engine watches the size: once the file holds `max_size` bytes it shifts
`ctr.log.1..N-2` up by one (dropping the oldest), renames `ctr.log` to `ctr.log.1` and writes a
"reopen logs" message (type 2) to conmon's control fifo `<bundle>/ctl`. conmon keeps writing to
the renamed file until it reopens, so no line is lost or split across the rename; then it starts
a fresh `ctr.log`. Readers (`k8s_log.read_logs`, `logstream.LogReader`) read across the files.

The check is a `stat` per running container every `CHECK_EVERY_S`, so a file can exceed
`max_size` by what the container writes in that interval; the total is bounded all the same.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from stackup.runtime.engine.containers.logpolicy import LogPolicy

log = logging.getLogger("stackupd.logrotate")

CHECK_EVERY_S = 0.15
REOPEN_LOGS = b"2 0 0\n"
"""conmon's control message: type 2 (reopen log files), then the unused height and width."""


@dataclass(frozen=True, slots=True)
class Watched:
    log_path: Path
    policy: LogPolicy


def rotate(log_path: Path, max_file: int) -> None:
    """Shift the files and ask conmon (through the fifo next to the log) to start a new one."""
    oldest = log_path.with_name(f"{log_path.name}.{max_file - 1}")
    oldest.unlink(missing_ok=True)
    for index in range(max_file - 2, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.rename(
                log_path.with_name(f"{log_path.name}.{index}"),
                log_path.with_name(f"{log_path.name}.{index + 1}"),
            )
    os.rename(log_path, log_path.with_name(f"{log_path.name}.1"))
    reopen(log_path.parent)


def reopen(bundle: Path) -> bool:
    """Ask the container's conmon to reopen its log; False if no conmon listens (it exited)."""
    try:
        fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return False
        raise
    try:
        os.write(fd, REOPEN_LOGS)
    finally:
        os.close(fd)
    return True


class LogRotator:
    """Rotates the logs of the containers it is told about (`watch`), on `check`."""

    def __init__(self) -> None:
        self._watched: dict[str, Watched] = {}

    def set_running(self, running: dict[str, Watched]) -> None:
        """The containers whose conmon writes now (others are not rotated: no one would reopen)."""
        self._watched = {cid: w for cid, w in running.items() if w.policy.keeps_log and w.policy.max_file > 1}

    def check(self) -> list[str]:
        """Rotate every watched log at or above its size; the ids rotated."""
        rotated: list[str] = []
        for container_id, watched in list(self._watched.items()):
            try:
                if watched.log_path.stat().st_size < watched.policy.max_size:
                    continue
                rotate(watched.log_path, watched.policy.max_file)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.error("rotating the log of %s failed: %s", container_id[:12], exc)
                continue
            rotated.append(container_id)
        return rotated
