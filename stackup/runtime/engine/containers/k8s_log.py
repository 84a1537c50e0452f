"""Reading the container logs conmon writes in the k8s-file format (the CRI log format).

Each line is `<RFC3339Nano timestamp> <stdout|stderr> <P|F> <text>`. conmon writes what it read
from the container's pipe in chunks, so one logical line may span several records, all but the
last tagged `P` (partial); `read_logs` joins them per stream so callers see the lines the
program wrote. The file is read, not followed; following is the server's job (it can poll the
file size or watch it).
"""

from __future__ import annotations

import collections
import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from stackup.runtime.engine.containers.logpolicy import log_files
from stackup.runtime.wire.models import LogLine

_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 with nanoseconds (conmon's) -> aware datetime; Python keeps microseconds only."""
    text = text.replace("Z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _raw_lines(files: list[Path]) -> Iterator[str]:
    """The records of the log's files in order. All are opened first, so a rotation while we
    read (renames) cannot make us skip or repeat a file; one rotated away meanwhile is skipped."""
    handles = []
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            handles.append(path.open(encoding="utf-8", errors="replace", newline="\n"))
    with contextlib.ExitStack() as stack:
        for handle in handles:
            stack.enter_context(handle)
        for handle in handles:
            yield from handle


def _records(files: list[Path]) -> Iterator[LogLine]:
    """Complete lines, partial records joined per stream (also across a rotation); a truncated
    record is skipped."""
    pending: dict[str, tuple[datetime, list[str]]] = {}
    for raw in _raw_lines(files):
        fields = raw.rstrip("\n").split(" ", 3)
        if len(fields) < 3:
            continue
        try:
            ts = parse_timestamp(fields[0])
        except ValueError:
            continue
        stream, tag = fields[1], fields[2]
        text = fields[3] if len(fields) > 3 else ""
        first_ts, parts = pending.pop(stream, (ts, []))
        parts.append(text)
        if tag == "P":
            pending[stream] = (first_ts, parts)
        else:
            yield LogLine(time=first_ts, stream=stream, text="".join(parts))
    # The container may still be writing the rest of a partial line: report what we have.
    for stream, (first_ts, parts) in pending.items():
        yield LogLine(time=first_ts, stream=stream, text="".join(parts))


def read_logs(log_path: Path, since: datetime | None = None, tail: int | None = None) -> Iterator[LogLine]:
    """The log's lines in order (its rotated files first, see `logpolicy.log_files`), optionally
    only those at or after `since` and only the last `tail`.

    A naive `since` is taken as UTC. A missing log (the container never wrote) yields nothing.
    """
    files = log_files(log_path)
    if not files:
        return iter(())
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    lines: Iterator[LogLine] = _records(files)
    if since is not None:
        lines = (line for line in lines if line.time >= since)
    if tail is not None:
        return iter(collections.deque(lines, maxlen=max(tail, 0)))
    return lines
