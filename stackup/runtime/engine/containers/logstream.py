"""Following a container's k8s-file log while conmon appends to it.

`k8s_log.read_logs` reads a finished file; following needs an incremental reader that remembers
its byte offset and the partial (`P`) records waiting for their end, so each poll returns only
complete new lines and no line is split or repeated. Polling (100 ms) rather than inotify keeps
it dependency-free; the end of a follow is "the container has exited and the file has no more".
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from stackup.runtime.engine.containers.k8s_log import parse_timestamp
from stackup.runtime.wire.models import LogLine

FOLLOW_POLL_S = 0.1
_READ_MAX = 4 << 20


class LogReader:
    """Returns the log lines appended since the previous call, partial records joined per stream."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._pending: dict[str, tuple[datetime, list[str]]] = {}

    def read_new(self) -> list[LogLine]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read(_READ_MAX)
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        lines: list[LogLine] = []
        for raw in data[: end + 1].decode("utf-8", errors="replace").split("\n")[:-1]:
            fields = raw.split(" ", 3)
            if len(fields) < 3:
                continue
            try:
                ts = parse_timestamp(fields[0])
            except ValueError:
                continue
            stream, tag, text = fields[1], fields[2], fields[3] if len(fields) > 3 else ""
            first, parts = self._pending.pop(stream, (ts, []))
            parts.append(text)
            if tag == "P":
                self._pending[stream] = (first, parts)
            else:
                lines.append(LogLine(time=first, stream=stream, text="".join(parts)))
        return lines

    def flush(self) -> list[LogLine]:
        """Partial lines still waiting for their end: reported when nothing more will come."""
        lines = [
            LogLine(time=first, stream=s, text="".join(parts)) for s, (first, parts) in self._pending.items()
        ]
        self._pending.clear()
        return lines


async def stream_logs(
    path: Path,
    *,
    since: datetime | None,
    tail: int | None,
    follow: bool,
    finished: Callable[[], Awaitable[bool]],
) -> AsyncIterator[LogLine]:
    """The existing lines (filtered by `since`, last `tail`), then, with `follow`, new ones until
    `finished()` says the container is gone and the file holds nothing more."""
    reader = LogReader(path)

    def keep(line: LogLine) -> bool:
        return since is None or line.time >= since

    backlog: list[LogLine] = []
    while True:  # the backlog may exceed one read
        chunk = await run_in_threadpool(reader.read_new)
        backlog.extend(chunk)
        if not chunk:
            break
    selected = [line for line in backlog if keep(line)]
    if not follow:
        selected += reader.flush()
    for line in collections.deque(selected, maxlen=tail) if tail is not None else selected:
        yield line
    if not follow:
        return
    while True:
        done = await finished()  # asked before reading, so lines written before the exit are seen
        for line in await run_in_threadpool(reader.read_new):
            if keep(line):
                yield line
        if done:
            for line in reader.flush():
                yield line
            return
        await asyncio.sleep(FOLLOW_POLL_S)
