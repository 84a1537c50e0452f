"""`ContainerOps` over the Docker Engine API: logs, exec, attach, kill, restart, wait, top, events, cp.

A mixin of `DockerRuntime` (it uses the runtime's `api` and `_call`), kept apart because these
are what front ends offer, not what the planner needs. Logs and events keep their stream and
timestamps; exec and attach hand back a `SocketStream`; `cp` is tar in, tar out, as the API is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import IO, Any

from stackup.runtime import labels as lbl
from stackup.runtime.base import (
    ExecOutput,
    ExecSpec,
    LogEntry,
    OutputStream,
    ProcessStream,
    RuntimeEvent,
    TopInfo,
)
from stackup.runtime.docker.streams import SocketStream
from stackup.runtime.docker.translate import parse_time

_HEADER_SIZE = 8
_EXEC_POLL_S = 0.05


class ContainerOpsMixin:
    api: Any
    stop_timeout_s: float | None

    def _call(self, what: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    # -- exec -------------------------------------------------------------------------------------

    def _exec_create(self, container_id: str, spec: ExecSpec, *, stream: bool) -> str:
        with self._call(f"exec in {container_id[:12]}"):
            answer = self.api.exec_create(
                container_id,
                list(spec.command),
                stdout=True,
                stderr=True,
                stdin=spec.stdin and stream,
                tty=spec.tty and stream,
                privileged=spec.privileged,
                user=spec.user or "",
                environment=[f"{k}={v}" for k, v in spec.environment.items()] or None,
                workdir=spec.working_dir,
            )
        return str(answer["Id"])

    def _exec_code(self, exec_id: str) -> int:
        """The exit code once the daemon has recorded it (it can lag the end of the stream)."""
        while True:
            with self._call(f"exec {exec_id[:12]}"):
                info = self.api.exec_inspect(exec_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            time.sleep(_EXEC_POLL_S)

    def exec(self, container_id: str, spec: ExecSpec) -> ExecOutput:
        exec_id = self._exec_create(container_id, spec, stream=False)
        with self._call(f"exec in {container_id[:12]}"):
            stdout, stderr = self.api.exec_start(exec_id, demux=True)
        return ExecOutput(self._exec_code(exec_id), stdout or b"", stderr or b"")

    def exec_stream(self, container_id: str, spec: ExecSpec) -> ProcessStream:
        exec_id = self._exec_create(container_id, spec, stream=True)
        with self._call(f"exec in {container_id[:12]}"):
            sock = self.api.exec_start(exec_id, tty=spec.tty, socket=True)

        def resize(rows: int, cols: int) -> None:
            with self._call(f"resize exec {exec_id[:12]}"):
                self.api.exec_resize(exec_id, height=rows, width=cols)

        return SocketStream(sock, tty=spec.tty, waiter=lambda: self._exec_code(exec_id), resizer=resize)

    def attach(self, container_id: str) -> ProcessStream:
        with self._call(f"attach to {container_id[:12]}"):
            tty = bool((self.api.inspect_container(container_id).get("Config") or {}).get("Tty"))
            sock = self.api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )

        def resize(rows: int, cols: int) -> None:
            with self._call(f"resize {container_id[:12]}"):
                self.api.resize(container_id, height=rows, width=cols)

        return SocketStream(sock, tty=tty, waiter=lambda: self.wait_container(container_id), resizer=resize)

    # -- logs -------------------------------------------------------------------------------------

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        since: datetime | None = None,
        tail: int | None = None,
    ) -> Iterator[LogEntry]:
        """Lines with their stream and time. The SDK's `logs` drops the stream id, so the response
        is read here: 8-byte frames without a TTY, raw bytes with one."""
        with self._call(f"logs of {container_id[:12]}"):
            tty = bool((self.api.inspect_container(container_id).get("Config") or {}).get("Tty"))
            params: dict[str, Any] = {
                "stdout": 1,
                "stderr": 1,
                "timestamps": 1,
                "follow": int(follow),
                "tail": "all" if tail is None else str(tail),
            }
            if since is not None:
                params["since"] = f"{since.timestamp():.9f}"
            response = self.api._get(
                self.api._url("/containers/{0}/logs", container_id), params=params, stream=True,
                timeout=None if follow else self.api.timeout,
            )
            self.api._raise_for_status(response)
        try:
            yield from _log_lines(response.raw, tty)
        finally:
            response.close()

    # -- lifecycle --------------------------------------------------------------------------------

    def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        with self._call(f"kill container {container_id[:12]}"):
            self.api.kill(container_id, signal=signal)

    def restart_container(self, container_id: str, timeout_s: float | None = None) -> None:
        timeout = self.stop_timeout_s if timeout_s is None else timeout_s
        with self._call(f"restart container {container_id[:12]}"):
            self.api.restart(container_id, timeout=10 if timeout is None else max(0, round(timeout)))

    def wait_container(self, container_id: str) -> int:
        with self._call(f"wait for container {container_id[:12]}"):
            return int(self.api.wait(container_id, timeout=None)["StatusCode"])

    def top(self, container_id: str) -> TopInfo:
        with self._call(f"top of {container_id[:12]}"):
            data = self.api.top(container_id)
        titles = [str(t) for t in data.get("Titles") or ()]
        rows = [[str(c) for c in row] for row in data.get("Processes") or ()]
        if len(titles) == 1 and len(titles[0].split()) > 1:  # Podman: `ps` output, one column
            titles = titles[0].split()
            rows = [" ".join(row).split(None, len(titles) - 1) for row in rows]
        return TopInfo(titles=tuple(titles), processes=tuple(tuple(row) for row in rows))

    # -- events -----------------------------------------------------------------------------------

    def events(
        self, *, project: str | None = None, follow: bool = True, history: bool = False
    ) -> Iterator[RuntimeEvent]:
        """Daemon events (of one project's objects when `project` is set: Compose's project label
        is on all of them). With `history` (or without `follow`), first the events the daemon still
        remembers; without `follow`, stop there."""
        filters = {"label": [f"{lbl.COMPOSE_PROJECT}={project}"]} if project else None
        until = None if follow else int(time.time()) + 1
        since = 1 if history or not follow else None
        with self._call("events"):
            stream = self.api.events(filters=filters, decode=True, since=since, until=until)
        try:
            for count, raw in enumerate(stream, start=1):
                yield _event(raw, count)
        finally:
            stream.close()

    # -- copy -------------------------------------------------------------------------------------

    def copy_to(self, container_id: str, path: str, archive: IO[bytes]) -> None:
        with self._call(f"copy to {container_id[:12]}:{path}"):
            ok = self.api.put_archive(container_id, path, archive)
        if not ok:
            from stackup.errors import RuntimeFailure

            raise RuntimeFailure(f"copy to {container_id[:12]}:{path}: the daemon refused the archive")

    def copy_from(self, container_id: str, path: str) -> Iterator[bytes]:
        with self._call(f"copy from {container_id[:12]}:{path}"):
            chunks, _stat = self.api.get_archive(container_id, path)
        with self._call(f"copy from {container_id[:12]}:{path}"):
            yield from chunks


def _log_lines(raw: Any, tty: bool) -> Iterator[LogEntry]:
    """Split the log stream into lines per stream; a partial last line is flushed at the end."""
    pending: dict[OutputStream, bytes] = {}
    kinds = {0: OutputStream.STDIN, 1: OutputStream.STDOUT, 2: OutputStream.STDERR}
    while True:
        if tty:
            chunk = raw.read1(65536) if hasattr(raw, "read1") else raw.read(65536)
            kind = OutputStream.STDOUT
        else:
            header = raw.read(_HEADER_SIZE)
            if not header or len(header) < _HEADER_SIZE:
                break
            kind = kinds.get(header[0], OutputStream.STDOUT)
            chunk = raw.read(int.from_bytes(header[4:], "big"))
        if not chunk:
            break
        data = pending.pop(kind, b"") + chunk
        *lines, rest = data.split(b"\n")
        if rest:
            pending[kind] = rest
        for line in lines:
            yield _entry(kind, line)
    for kind, rest in pending.items():
        yield _entry(kind, rest)


def _entry(kind: OutputStream, line: bytes) -> LogEntry:
    text = line.decode(errors="replace").removesuffix("\r")
    stamp, sep, rest = text.partition(" ")
    when = parse_time(stamp) if sep else None
    return LogEntry(kind, rest if when is not None else text, when)


def _event(raw: dict[str, Any], count: int) -> RuntimeEvent:
    """One daemon event; its `sequence` is the daemon's nanosecond time (it orders events across
    calls, as the native engine's event id does), else its place in this stream."""
    actor = raw.get("Actor") or {}
    attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    nano = raw.get("timeNano")
    when = (
        datetime.fromtimestamp(nano / 1e9, UTC) if isinstance(nano, int)
        else datetime.fromtimestamp(float(raw.get("time") or 0), UTC)
    )
    return RuntimeEvent(
        time=when,
        type=str(raw.get("Type") or ""),
        action=str(raw.get("Action") or raw.get("status") or ""),
        id=str(actor.get("ID") or raw.get("id") or ""),
        name=attributes.get("name", ""),
        attributes=attributes,
        sequence=nano if isinstance(nano, int) else count,
    )
