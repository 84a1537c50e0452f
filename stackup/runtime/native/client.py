"""EngineClient: the typed client of `stackupd`'s HTTP API over its Unix socket.

Every failure crosses this seam as a `stackup.errors` exception: transport errors become
`EngineUnavailable` (see `unixhttp`), 404 answers `NotFound`, other error answers `RuntimeFailure`
with the engine's message (`raise_for_answer`), so callers (the CLI, `runtime/native.py`) catch
one exception tree. The transport is the standard library's (`unixhttp.py` says why).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from stackup.errors import EngineUnavailable, NotFound, ProjectBusy, RuntimeFailure, StackupError
from stackup.runtime.native import remotefiles
from stackup.runtime.native.answers import raise_for_answer
from stackup.runtime.native.dialers import Dialer
from stackup.runtime.native.streams import UpgradedStream, open_upgraded
from stackup.runtime.native.unixhttp import Answer, UnixHTTP
from stackup.runtime.wire.images import (
    BootstrapProgress,
    BootstrapRequest,
    HistoryEntry,
    ImagePull,
    ImagePush,
    ImageRecord,
    ImageTag,
    RegistryAuth,
    TransferEvent,
)
from stackup.runtime.wire.models import (
    ContainerCreate,
    EngineInfo,
    ExecRequest,
    ExecResult,
    ImageImport,
    ImportFormat,
    LockState,
    LogLine,
    NetworkCreate,
    NetworkLeftover,
    ProjectLockStatus,
    PruneResult,
    SyncResult,
    TopResult,
    VersionInfo,
    VolumeCreate,
    WaitResult,
)
from stackup.runtime.wire.network import NetworkDetails
from stackup.runtime.wire.records import ContainerRecord, Event, EventType, NetworkRecord, VolumeRecord
from stackup.runtime.wire.streams import ExecCreate, ExecInspect

if TYPE_CHECKING:  # the build models load with the first build call: `up` and `down` need none
    from stackup.runtime.wire.build import BuildCacheUsage, BuildEvent, BuildRequest, ContextUpload

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)

DEFAULT_TIMEOUT_S = 60.0
"""Long enough for a container create (image mount + runc) on a loaded machine."""


def _labels_param(labels: Mapping[str, str | None] | None) -> list[str]:
    return [key if value is None else f"{key}={value}" for key, value in (labels or {}).items()]


class EngineClient:
    """One engine, one kept-alive connection per thread. Thread-safe, so one per process."""

    def __init__(self, target: Path | Dialer, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._http = UnixHTTP(target, timeout_s=timeout_s)
        self.dialer = self._http.dialer

    @property
    def remote(self) -> bool:
        """Whether the engine is on another machine: paths the client names mean nothing there."""
        return self.dialer.remote

    def close(self) -> None:
        self._http.close()
        close = getattr(self.dialer, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        params: Mapping[str, Any] | None = None,
        timeout_s: float | bool | None = True,
    ) -> Answer:
        """One request; `timeout_s=True` keeps the client default, None waits forever."""
        content = body.model_dump_json().encode() if body is not None else None
        answer = self._http.request(method, path, params=params, body=content, timeout_s=timeout_s)
        raise_for_answer(answer)
        return answer

    def _get(self, model: type[_M], method: str, path: str, **kwargs: Any) -> _M:
        return model.model_validate_json(self._call(method, path, **kwargs).content)

    def _get_list(self, model: type[_M], path: str, *, method: str = "GET", **kwargs: Any) -> list[_M]:
        adapter: TypeAdapter[list[_M]] = TypeAdapter(list[model])  # type: ignore[valid-type]
        return adapter.validate_json(self._call(method, path, **kwargs).content)

    def _stream(
        self, model: type[_M], path: str, params: Mapping[str, Any], timeout_s: float | None = None
    ) -> Iterator[_M]:
        """Yield one model per NDJSON line until the engine ends the stream."""
        with self._http.stream("GET", path, params=params, timeout_s=timeout_s) as response:
            if not 200 <= response.status < 300:
                raise_for_answer(Answer(response.status, response.read()))
            while line := response.readline():
                if line.strip():
                    yield model.model_validate(json.loads(line))

    # -- system -----------------------------------------------------------------------------

    def ping(self) -> None:
        """Return when the engine answers; raise `EngineUnavailable` otherwise."""
        self._call("GET", "/_ping", timeout_s=5.0)

    def version(self) -> VersionInfo:
        return self._get(VersionInfo, "GET", "/version")

    def info(self) -> EngineInfo:
        return self._get(EngineInfo, "GET", "/info")

    def openapi(self) -> dict[str, Any]:
        return dict(json.loads(self._call("GET", "/openapi.json").content))

    def shutdown(self) -> None:
        """Ask the engine to exit; containers keep running (conmon holds them)."""
        self._call("POST", "/shutdown")

    def events(
        self,
        *,
        since_id: int | None = None,
        type_: EventType | None = None,
        follow: bool = True,
        project: str | None = None,
    ) -> Iterator[Event]:
        """Events after `since_id` (None: none of the past), then live ones while `follow`;
        with `project`, only those about that project's containers, networks and volumes."""
        params: dict[str, Any] = {"follow": follow}
        params |= {
            k: v for k, v in (("since_id", since_id), ("type", type_), ("project", project)) if v is not None
        }
        return self._stream(Event, "/events", params)

    # -- builds -----------------------------------------------------------------------------

    def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
        """Progress of a build as the engine runs it; the last event is `result` or `error`."""
        from stackup.runtime.wire.build import BuildEvent

        remotefiles.check_build(self.dialer, request)
        body = request.wire_json()
        with self._http.stream("POST", "/build", body=body, timeout_s=None) as response:
            if not 200 <= response.status < 300:
                raise_for_answer(Answer(response.status, response.read()))
            while line := response.readline():
                if line.strip():
                    yield BuildEvent.model_validate_json(line)

    def upload_context(self, archive: IO[bytes]) -> ContextUpload:
        """Send a build context (a tar) to the engine; where it was unpacked (`contexts.py`)."""
        from stackup.runtime.wire.build import ContextUpload

        answer = self._http.upload("POST", "/build/contexts", archive, content_type="application/x-tar",
                                   timeout_s=None)  # fmt: skip
        raise_for_answer(answer)
        return ContextUpload.model_validate_json(answer.content)

    def remove_context(self, upload_id: str) -> None:
        self._call("DELETE", f"/build/contexts/{upload_id}")

    def build_cache(self) -> BuildCacheUsage:
        from stackup.runtime.wire.build import BuildCacheUsage

        return self._get(BuildCacheUsage, "GET", "/build/cache")

    def prune_build_cache(self, *, keep_bytes: int = 0) -> BuildCacheUsage:
        from stackup.runtime.wire.build import BuildCachePrune, BuildCacheUsage

        body = BuildCachePrune(all=keep_bytes == 0, keep_bytes=keep_bytes)
        return self._get(BuildCacheUsage, "POST", "/build/prune", body=body, timeout_s=None)
    @contextlib.contextmanager
    def project_lock(
        self,
        project: str,
        *,
        holder: str = "",
        timeout_s: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        """Hold the project's lock in the engine for the duration of the `with` block: the
        connection stays open, and closing it (or this process dying) releases the lock.
        Waits at most `timeout_s` (None: forever) for another holder, telling `on_wait` who
        it is; raises `ProjectBusy` after that.

        A block that ends normally gives the lock back explicitly: every request it made has been
        answered, so the next holder need not wait the grace period the engine gives a client
        that vanished (whose last requests may still be unread, see `projectlocks`). A block that
        raised leaves it to the connection's close: worker threads may still be sending."""
        with self._http.stream("POST", f"/projects/{project}/lock", params={"holder": holder},
                               timeout_s=timeout_s) as response:  # fmt: skip
            if not 200 <= response.status < 300:
                raise_for_answer(Answer(response.status, response.read()))
            started, other = time.monotonic(), ""
            while True:
                try:
                    line = response.readline()
                except TimeoutError:
                    raise ProjectBusy(
                        f"project {project} is busy: {other or 'another client'} has held its lock for "
                        f"over {time.monotonic() - started:.0f}s; try again when it is done",
                        other,
                    ) from None
                if not line:
                    raise EngineUnavailable(f"engine at {self.dialer} closed the lock of {project}")
                if not line.strip():
                    continue
                status = ProjectLockStatus.model_validate_json(line)
                if status.state is LockState.HELD:
                    break
                other = status.holder
                if on_wait is not None:
                    on_wait(other)
            yield  # keepalives are left unread: the socket's buffer absorbs a line every few seconds
            if status.token:  # an older engine gives none: the close alone releases
                with contextlib.suppress(StackupError, OSError):  # the close releases it anyway
                    self._call("DELETE", f"/projects/{project}/lock", params={"token": status.token})

    # -- images -----------------------------------------------------------------------------

    def list_images(self) -> list[ImageRecord]:
        return self._get_list(ImageRecord, "/images")

    def import_image(
        self,
        path: Path,
        ref: str | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        format: ImportFormat = ImportFormat.AUTO,
    ) -> list[ImageRecord]:
        """Import a rootfs (directory or tar; needs `ref`) or an image archive from a host path."""
        remotefiles.check_import(self.dialer, str(path))
        body = ImageImport(path=str(path.absolute()), ref=ref, config=dict(config or {}), format=format)
        return self._get_list(ImageRecord, "/images/import", method="POST", body=body, timeout_s=None)

    def inspect_image(self, ref: str) -> ImageRecord:
        return self._get(ImageRecord, "GET", f"/images/{ref}")

    def remove_image(self, ref: str, *, force: bool = False) -> None:
        self._call("DELETE", f"/images/{ref}", params={"force": force})

    def prune_images(self) -> PruneResult:
        return self._get(PruneResult, "POST", "/images/prune")

    def _transfer(self, path: str, body: BaseModel, progress: Callable[[TransferEvent], None] | None,
                  ) -> TransferEvent:
        """Follow a pull or push stream: layer events to `progress`, the last line is the outcome."""
        content = body.model_dump_json().encode()
        with self._http.stream("POST", path, body=content, timeout_s=None) as response:
            if not 200 <= response.status < 300:
                raise_for_answer(Answer(response.status, response.read()))
            while line := response.readline():
                if not line.strip():
                    continue
                event = TransferEvent.model_validate_json(line)
                if event.error:
                    raise (NotFound if event.not_found else RuntimeFailure)(event.error)
                if event.image is not None or event.digest:
                    return event
                if progress is not None:
                    progress(event)
        raise RuntimeFailure(f"the engine ended {path} without an outcome; see its log")

    def pull_image(
        self, ref: str, *, platform: str | None = None, auth: Sequence[RegistryAuth] = (),
        progress: Callable[[TransferEvent], None] | None = None,
    ) -> ImageRecord:
        """Pull from a registry; `auth` carries credentials this process resolved for the host."""
        event = self._transfer("/images/pull", ImagePull(ref=ref, platform=platform, auth=tuple(auth)),
                               progress)
        assert event.image is not None
        return event.image

    def push_image(
        self, ref: str, *, auth: Sequence[RegistryAuth] = (),
        progress: Callable[[TransferEvent], None] | None = None,
    ) -> str:
        """Push to the registry `ref` names; returns the manifest digest."""
        return self._transfer(f"/images/{ref}/push", ImagePush(auth=tuple(auth)), progress).digest

    def tag_image(self, ref: str, target: str) -> ImageRecord:
        return self._get(ImageRecord, "POST", f"/images/{ref}/tag", body=ImageTag(target=target))

    # -- volumes ----------------------------------------------------------------------------

    def create_volume(
        self, name: str, labels: Mapping[str, str] | None = None, driver: str = "local"
    ) -> VolumeRecord:
        body = VolumeCreate(name=name, labels=dict(labels or {}), driver=driver)
        return self._get(VolumeRecord, "POST", "/volumes", body=body)

    def list_volumes(self, labels: Mapping[str, str | None] | None = None) -> list[VolumeRecord]:
        return self._get_list(VolumeRecord, "/volumes", params={"label": _labels_param(labels)})

    def inspect_volume(self, name: str) -> VolumeRecord:
        return self._get(VolumeRecord, "GET", f"/volumes/{name}")

    def remove_volume(self, name: str) -> None:
        self._call("DELETE", f"/volumes/{name}")

    # -- networks ---------------------------------------------------------------------------

    def create_network(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        internal: bool = False,
        subnets: Sequence[str] = (),
    ) -> NetworkRecord:
        """Create a bridge network (or get the existing one of that name if its settings agree)."""
        body = NetworkCreate(name=name, labels=dict(labels or {}), internal=internal, subnets=tuple(subnets))
        return self._get(NetworkRecord, "POST", "/networks", body=body)

    def list_networks(self, labels: Mapping[str, str | None] | None = None) -> list[NetworkRecord]:
        return self._get_list(NetworkRecord, "/networks", params={"label": _labels_param(labels)})

    def inspect_network(self, name: str) -> NetworkDetails:
        return self._get(NetworkDetails, "GET", f"/networks/{name}")

    def remove_network(self, name: str, *, force: bool = False) -> None:
        self._call("DELETE", f"/networks/{name}", params={"force": force})

    def prune_networks(self, labels: Mapping[str, str | None] | None = None) -> PruneResult:
        return self._get(PruneResult, "POST", "/networks/prune", params={"label": _labels_param(labels)})

    def doctor(self, fix: bool = False) -> list[NetworkLeftover]:
        """Network leftovers no record owns; with `fix`, this root's are removed (and say so)."""
        if fix:
            return self._get_list(NetworkLeftover, "/doctor", method="POST", params={"fix": True})
        return self._get_list(NetworkLeftover, "/doctor")

    # -- containers -------------------------------------------------------------------------

    def create_container(self, request: ContainerCreate) -> ContainerRecord:
        remotefiles.check_create(self.dialer, request)
        return self._get(ContainerRecord, "POST", "/containers", body=request)

    def list_containers(
        self,
        *,
        project: str | None = None,
        service: str | None = None,
        labels: Mapping[str, str | None] | None = None,
    ) -> list[ContainerRecord]:
        params: dict[str, Any] = {"label": _labels_param(labels)}
        params |= {k: v for k, v in (("project", project), ("service", service)) if v is not None}
        return self._get_list(ContainerRecord, "/containers", params=params)

    def inspect_container(self, ref: str) -> ContainerRecord:
        return self._get(ContainerRecord, "GET", f"/containers/{ref}")

    def start_container(self, ref: str) -> ContainerRecord:
        """Start it; no client timeout, since the engine's `post_start` hooks bound the call."""
        return self._get(ContainerRecord, "POST", f"/containers/{ref}/start", timeout_s=None)

    def stop_container(self, ref: str, timeout_s: float | None = None) -> ContainerRecord:
        """Stop signal, then SIGKILL after `timeout_s` (None: the container's grace period)."""
        params = {} if timeout_s is None else {"timeout": timeout_s}
        return self._get(ContainerRecord, "POST", f"/containers/{ref}/stop", params=params, timeout_s=None)

    def restart_container(self, ref: str, timeout_s: float | None = None) -> ContainerRecord:
        params = {} if timeout_s is None else {"timeout": timeout_s}
        return self._get(ContainerRecord, "POST", f"/containers/{ref}/restart", params=params, timeout_s=None)

    def kill_container(self, ref: str, signal: str | int = "SIGKILL") -> None:
        self._call("POST", f"/containers/{ref}/kill", params={"signal": str(signal)})

    def remove_container(self, ref: str, *, force: bool = False) -> None:
        self._call("DELETE", f"/containers/{ref}", params={"force": force}, timeout_s=None)

    def wait_container(self, ref: str, timeout_s: float | None = None) -> int:
        """Block until the container exits; return its exit code."""
        return self._get(WaitResult, "POST", f"/containers/{ref}/wait", timeout_s=timeout_s).exit_code

    def exec(self, ref: str, request: ExecRequest) -> ExecResult:
        """Run a process to completion (no TTY) and return its output; waits as long as it runs."""
        return self._get(ExecResult, "POST", f"/containers/{ref}/exec", body=request, timeout_s=None)

    def top(self, ref: str) -> TopResult:
        return self._get(TopResult, "GET", f"/containers/{ref}/top")

    def logs(
        self,
        ref: str,
        *,
        follow: bool = False,
        since: datetime | None = None,
        tail: int | None = None,
    ) -> Iterator[LogLine]:
        """Log lines, oldest first; with `follow`, until the container exits (or the caller stops)."""
        params: dict[str, Any] = {"follow": follow}
        if since is not None:
            params["since"] = since.isoformat()
        if tail is not None:
            params["tail"] = tail
        return self._stream(LogLine, f"/containers/{ref}/logs", params)

    # -- streams and files ------------------------------------------------------------------

    def create_exec(self, ref: str, request: ExecCreate) -> ExecInspect:
        return self._get(ExecInspect, "POST", f"/containers/{ref}/execs", body=request)

    def inspect_exec(self, exec_id: str) -> ExecInspect:
        return self._get(ExecInspect, "GET", f"/exec/{exec_id}/json")

    def resize_exec(self, exec_id: str, rows: int, cols: int) -> None:
        self._call("POST", f"/exec/{exec_id}/resize", params={"h": rows, "w": cols})

    def start_exec(self, session: ExecInspect, size: tuple[int, int] | None = None) -> UpgradedStream:
        """Start a created session; its stdio as a stream (see `wire/streams.py`)."""
        params = {"h": size[0], "w": size[1]} if size else {}
        sock, first = open_upgraded(self.dialer, f"/exec/{session.id}/start", params)

        def exit_code() -> int:
            code = self.inspect_exec(session.id).exit_code
            return -1 if code is None else code

        return UpgradedStream(
            sock, first, tty=session.tty, resize=lambda r, c: self.resize_exec(session.id, r, c),
            exit_code=exit_code,
        )  # fmt: skip

    def attach(self, ref: str, *, stdin: bool = True) -> UpgradedStream:
        """The main process's stdio (output from now on: there is no replay); the exit code is
        the container's."""
        record = self.inspect_container(ref)
        tty = bool(record.config.get("tty", False))
        sock, first = open_upgraded(self.dialer, f"/containers/{record.id}/attach", {"stdin": stdin})
        return UpgradedStream(
            sock, first, tty=tty, resize=lambda r, c: self.resize_container(record.id, r, c),
            exit_code=lambda: self.wait_container(record.id),
        )  # fmt: skip

    def resize_container(self, ref: str, rows: int, cols: int) -> None:
        self._call("POST", f"/containers/{ref}/resize", params={"h": rows, "w": cols})

    def put_archive(self, ref: str, path: str, archive: IO[bytes]) -> None:
        """Extract a tar stream into the directory `path` of the container's filesystem."""
        answer = self._http.upload(
            "PUT", f"/containers/{ref}/archive", archive, params={"path": path},
            content_type="application/x-tar", timeout_s=None,
        )  # fmt: skip
        raise_for_answer(answer)

    def sync(self, ref: str, path: str, archive: bytes) -> SyncResult:
        """Apply a tar of changes (OCI whiteouts delete) under directory `path` of the container.
        The batch is sent whole on the thread's kept-alive connection: a save is one small
        request, and a fresh connection per save would be a measurable part of its latency."""
        answer = self._http.request("POST", f"/containers/{ref}/sync", params={"path": path}, body=archive,
                                    timeout_s=None)  # fmt: skip
        raise_for_answer(answer)
        return SyncResult.model_validate_json(answer.content)

    def get_archive(self, ref: str, path: str) -> Iterator[bytes]:
        """`path` of the container's filesystem as a tar stream, in chunks."""
        with self._http.stream("GET", f"/containers/{ref}/archive", params={"path": path}) as response:
            if not 200 <= response.status < 300:
                raise_for_answer(Answer(response.status, response.read()))
            while chunk := response.read(1 << 16):
                yield chunk

    # -- images in and out ------------------------------------------------------------------

    def _chunks(self, method: str, path: str, params: Mapping[str, Any]) -> Iterator[bytes]:
        with self._http.stream(method, path, params=params, timeout_s=None) as response:
            if not 200 <= response.status < 300:
                raise_for_answer(Answer(response.status, response.read()))
            while chunk := response.read(1 << 16):
                yield chunk

    def bootstrap_image(
        self, base: str, ref: str | None = None, *, mirror: str | None = None
    ) -> Iterator[BootstrapProgress]:
        """Make a base image on the engine; its progress lines, the last one carrying the image
        (or the error, which the caller raises: see `BootstrapProgress`)."""
        body = BootstrapRequest(base=base, ref=ref, mirror=mirror).model_dump_json().encode()
        with self._http.stream("POST", "/images/bootstrap", body=body, timeout_s=None) as response:
            if not 200 <= response.status < 300:
                raise_for_answer(Answer(response.status, response.read()))
            while line := response.readline():
                if line.strip():
                    yield BootstrapProgress.model_validate_json(line)

    def load_images(self, archive: IO[bytes]) -> list[ImageRecord]:
        """Load a docker-save / podman-save / OCI archive read from `archive`."""
        answer = self._http.upload("POST", "/images/load", archive, content_type="application/x-tar",
                                   timeout_s=None)  # fmt: skip
        raise_for_answer(answer)
        return TypeAdapter(list[ImageRecord]).validate_json(answer.content)

    def save_images(self, names: Sequence[str]) -> Iterator[bytes]:
        """The images as one archive that `docker load` and `podman load` read, in chunks."""
        return self._chunks("GET", "/images/get", {"names": list(names)})

    def image_history(self, ref: str) -> list[HistoryEntry]:
        return self._get_list(HistoryEntry, f"/images/{ref}/history")


    def commit_container(self, ref: str, target: str | None = None, *, comment: str = "") -> ImageRecord:
        params = {"target": target, "comment": comment or None}
        return self._get(ImageRecord, "POST", f"/containers/{ref}/commit", params=params, timeout_s=None)

    def export_container(self, ref: str) -> Iterator[bytes]:
        """The container's root filesystem as a tar, in chunks."""
        return self._chunks("GET", f"/containers/{ref}/export", {})
