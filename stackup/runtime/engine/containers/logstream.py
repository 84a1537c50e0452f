"""Following a container's k8s-file log while conmon appends to it.

`k8s_log.read_logs` reads a finished file; following needs an incremental reader that remembers
its byte offset and the partial (`P`) records waiting for their end, so each poll returns only
complete new lines and no line is split or repeated. Polling (100 ms) rather than inotify keeps
it dependency-free; the end of a follow is "the container has exited and the file has no more".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool

from stackup.runtime.engine.containers.k8s_log import parse_timestamp
from stackup.runtime.engine.containers.logpolicy import log_files
from stackup.runtime.wire.models import LogLine

FOLLOW_POLL_S = 0.1
_READ_MAX = 4 << 20


class LogReader:
    """Returns the log lines appended since the previous call, partial records joined per stream.

    It reads through open handles, not a path and an offset, so a rotation (`logrotate.py`
    renames `ctr.log` to `ctr.log.1` and conmon starts a new `ctr.log`; or conmon replaces the
    file at `--log-size-max`) loses nothing: the old handle is read to its end, then the new file
    is opened. The first call starts from the oldest rotated file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handles: list[BinaryIO] | None = None
        self._carry = b""
        self._pending: dict[str, tuple[datetime, list[str]]] = {}

    def close(self) -> None:
        for handle in self._handles or []:
            handle.close()
        self._handles = []

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _open(self) -> list[BinaryIO]:
        if self._handles is None:
            self._handles = []
            for path in log_files(self.path):
                with contextlib.suppress(FileNotFoundError):
                    self._handles.append(path.open("rb"))
        return self._handles

    def _replaced(self, handle: BinaryIO) -> bool:
        """Whether the path now names another file than the one we read (rotated or replaced)."""
        try:
            return os.stat(self.path).st_ino != os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            return False  # between conmon's rename and its reopen: keep reading the old one

    def _read_raw(self) -> bytes:
        handles = self._open()
        if not handles:
            with contextlib.suppress(FileNotFoundError):
                handles.append(self.path.open("rb"))
        data = b""
        while handles and len(data) < _READ_MAX:
            head = handles[0]
            chunk = head.read(_READ_MAX - len(data))
            data += chunk
            if chunk:
                continue
            if len(handles) > 1:
                handles.pop(0).close()
            elif self._replaced(head):
                head.close()
                handles.pop(0)
                with contextlib.suppress(FileNotFoundError):
                    handles.append(self.path.open("rb"))
            else:
                break
        return data

    def read_new(self) -> list[LogLine]:
        data = self._carry + self._read_raw()
        end = data.rfind(b"\n")
        if end < 0:
            self._carry = data
            return []
        self._carry = data[end + 1 :]
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
    try:
        async for line in _follow(reader, since=since, tail=tail, follow=follow, finished=finished):
            yield line
    finally:
        reader.close()


async def _follow(
    reader: LogReader,
    *,
    since: datetime | None,
    tail: int | None,
    follow: bool,
    finished: Callable[[], Awaitable[bool]],
) -> AsyncIterator[LogLine]:
    def keep(line: LogLine) -> bool:
        return since is None or line.time >= since

    # With `tail`, only the last lines are kept while reading: 30 MB of rotated logs must not
    # become 30 MB of objects per client.
    backlog: collections.deque[LogLine] = collections.deque(maxlen=tail)
    while True:  # the backlog may exceed one read
        chunk = await run_in_threadpool(reader.read_new)
        backlog.extend(line for line in chunk if keep(line))
        if not chunk:
            break
    if not follow:
        backlog.extend(reader.flush())
    for line in backlog:
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
