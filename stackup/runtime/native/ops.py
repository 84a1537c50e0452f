"""The container operations front ends offer (`ContainerOps`), through the engine's API.

Each is one request (or one stream) of `EngineClient`; the engine does the work. Interactive
ones (`exec_stream`, `attach`) return an `UpgradedStream`, the `ProcessStream` over an upgraded
connection (`native/streams.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import IO

from stackup.runtime.base import (
    ExecOutput,
    ExecSpec,
    LogEntry,
    OutputStream,
    ProcessStream,
    RuntimeEvent,
    TopInfo,
)
from stackup.runtime.native.client import EngineClient
from stackup.runtime.wire.models import ExecRequest
from stackup.runtime.wire.records import Event
from stackup.runtime.wire.streams import ExecCreate

_LOG_STREAMS = {"stdout": OutputStream.STDOUT, "stderr": OutputStream.STDERR, "stdin": OutputStream.STDIN}


def runtime_event(event: Event) -> RuntimeEvent:
    return RuntimeEvent(
        time=event.time,
        type=event.type.value,
        action=event.action,
        id=event.actor,
        name=event.attributes.get("name", ""),
        attributes=dict(event.attributes),
        sequence=event.id,
    )


class NativeContainerOps:
    """`ContainerOps` over `self.client` (mixed into `NativeRuntime`)."""

    client: EngineClient
    stop_timeout_s: float | None

    def logs(
        self, container_id: str, *, follow: bool = False, since: datetime | None = None,
        tail: int | None = None,
    ) -> Iterator[LogEntry]:  # fmt: skip
        for line in self.client.logs(container_id, follow=follow, since=since, tail=tail):
            stream = _LOG_STREAMS.get(line.stream, OutputStream.STDOUT)
            yield LogEntry(stream=stream, text=line.text, time=line.time)

    def exec(self, container_id: str, spec: ExecSpec) -> ExecOutput:
        """Run to completion and capture; a privileged one goes through a session (the
        capturing endpoint has no `privileged`), collecting the stream's output."""
        if spec.privileged:
            stream = self.exec_stream(container_id, ExecSpec(
                command=spec.command, user=spec.user, working_dir=spec.working_dir,
                environment=spec.environment, privileged=True,
            ))  # fmt: skip
            out = {OutputStream.STDOUT: bytearray(), OutputStream.STDERR: bytearray()}
            try:
                while (chunk := stream.read()) is not None:
                    out.setdefault(chunk[0], bytearray()).extend(chunk[1])
                code = stream.wait()
            finally:
                stream.close()
            return ExecOutput(code, bytes(out[OutputStream.STDOUT]), bytes(out[OutputStream.STDERR]))
        result = self.client.exec(container_id, ExecRequest(
            args=spec.command, env=dict(spec.environment), cwd=spec.working_dir, user=spec.user,
        ))  # fmt: skip
        return ExecOutput(result.exit_code, result.stdout.encode(), result.stderr.encode())

    def exec_stream(
        self, container_id: str, spec: ExecSpec, size: tuple[int, int] | None = None
    ) -> ProcessStream:
        """A session with a live connection; `size` (rows, columns) is the TTY's first size."""
        session = self.client.create_exec(container_id, ExecCreate(
            args=spec.command, env=dict(spec.environment), cwd=spec.working_dir, user=spec.user,
            privileged=spec.privileged, tty=spec.tty, stdin=spec.stdin,
        ))  # fmt: skip
        return self.client.start_exec(session, size)

    def attach(self, container_id: str) -> ProcessStream:
        return self.client.attach(container_id)

    def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        self.client.kill_container(container_id, signal)

    def restart_container(self, container_id: str, timeout_s: float | None = None) -> None:
        self.client.restart_container(container_id, self.stop_timeout_s if timeout_s is None else timeout_s)

    def wait_container(self, container_id: str) -> int:
        return self.client.wait_container(container_id)

    def top(self, container_id: str) -> TopInfo:
        result = self.client.top(container_id)
        return TopInfo(titles=result.titles, processes=result.processes)

    def events(
        self, *, project: str | None = None, follow: bool = True, history: bool = False
    ) -> Iterator[RuntimeEvent]:
        """Events from now on while `follow` (the recorded ones first with `history`), else the
        recorded ones up to now; filtered by the engine when `project` is set (containers,
        networks and volumes by their project label)."""
        since = 0 if history or not follow else None
        for event in self.client.events(since_id=since, follow=follow, project=project):
            yield runtime_event(event)

    def copy_to(self, container_id: str, path: str, archive: IO[bytes]) -> None:
        self.client.put_archive(container_id, path, archive)

    def sync_tree(self, container_id: str, path: str, archive: bytes) -> tuple[int, int]:
        """`runtime.base.TreeSync`: the engine applies the batch through the container's root."""
        result = self.client.sync(container_id, path, archive)
        return result.written, result.deleted

    def copy_from(self, container_id: str, path: str) -> Iterator[bytes]:
        return self.client.get_archive(container_id, path)
