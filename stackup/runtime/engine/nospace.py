"""A full filesystem under STACKUP_ROOT, told as such.

Running out of space shows up in many guises: `OSError` ENOSPC or EDQUOT from a write, SQLite's
"database or disk is full", an OCI runtime or tar tool whose stderr says "No space left on
device", each wrapped in our errors on the way up. Every answer and every stream's last event
passes through `message`, so all of them become the same line, naming the root and what to do,
instead of "engine bug: OperationalError". What is left behind is the callers' concern: SQLite
rolls the transaction back, and each writer removes its temp file (tested in
tests/runtime/engine/test_disk_full.py).
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_WORDS = ("no space left on device", "database or disk is full", "disk quota exceeded")


def is_no_space(exc: BaseException) -> bool:
    """Whether `exc`, or anything it was raised from, is the filesystem being full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ERRNOS:
            return True
        if isinstance(current, sqlite3.OperationalError | sqlite3.DatabaseError) and "full" in str(current):
            return True
        tail = getattr(current, "tail", None) or ()  # a failed RUN's last lines
        said = " ".join([str(current), *map(str, tail)]).lower()
        if any(word in said for word in _WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def message(root: Path, exc: BaseException) -> str | None:
    """The one line to answer with when `exc` is a full filesystem, else None."""
    if not is_no_space(exc):
        return None
    return (
        f"no space left under {root}: free space on that filesystem (`stackup image prune -a`, "
        f"`stackup builder prune`, `stackup down -v` of idle projects) or point STACKUP_ROOT at a larger one"
    )
