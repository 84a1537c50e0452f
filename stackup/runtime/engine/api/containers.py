"""Container endpoints: create, list, inspect, start, stop, kill, restart, remove, wait, logs, exec, top."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from stackup.errors import InvalidRequest, NotFound, RuntimeFailure
from stackup.runtime.engine.api.routing import (
    Endpoint,
    Param,
    answer,
    blocking,
    engine_of,
    ndjson,
    query,
    query_bool,
    query_bounded,
    query_labels,
    read_body,
)
from stackup.runtime.engine.containers.config import parse_signal
from stackup.runtime.engine.containers.logstream import stream_logs
from stackup.runtime.wire.models import (
    ContainerCreate,
    ExecRequest,
    ExecResult,
    LogLine,
    TopResult,
    WaitResult,
)
from stackup.runtime.wire.records import ContainerRecord, ContainerStatus, Event

WAIT_TICK_S = 1.0

_ID = Param("ref", where="path", description="container id, name or id prefix")


def _ref(request: Request) -> str:
    ref: str = request.path_params["ref"]
    return ref


def _since(request: Request) -> datetime | None:
    """`since` as unix seconds or ISO 8601 (UTC when naive), like `docker logs --since`."""
    seconds = request.query_params.get("since", "").replace(".", "", 1)
    if seconds.isdigit():
        try:
            return datetime.fromtimestamp(float(request.query_params["since"]), UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidRequest(f"?since={request.query_params['since']}: {exc}") from exc
    parsed = query(request, "since", datetime)
    return parsed.replace(tzinfo=UTC) if parsed is not None and parsed.tzinfo is None else parsed


def _timeout(request: Request) -> float | None:
    """Seconds to wait before SIGKILL; a day at most (more overflows the clocks below)."""
    return query_bounded(request, "timeout", float, 0.0, 86400.0)


async def create(request: Request) -> Response:
    body = await read_body(request, ContainerCreate)
    return answer(await blocking(engine_of(request).containers.create, body), status_code=201)


async def list_all(request: Request) -> Response:
    q = request.query_params
    engine = engine_of(request)
    found = await blocking(engine.list_containers, q.get("project"), q.get("service"), query_labels(request))
    return answer(found)


async def inspect(request: Request) -> Response:
    return answer(await blocking(engine_of(request).inspect_container, _ref(request)))


async def start(request: Request) -> Response:
    return answer(await blocking(engine_of(request).start_container, _ref(request)))


async def stop(request: Request) -> Response:
    engine = engine_of(request)
    return answer(await blocking(engine.stop_container, _ref(request), _timeout(request)))


async def restart(request: Request) -> Response:
    engine = engine_of(request)
    return answer(await blocking(engine.restart_container, _ref(request), _timeout(request)))


async def kill(request: Request) -> Response:
    signal = request.query_params.get("signal", "SIGKILL")
    try:
        parse_signal(signal)  # before the supervisor hears of a manual stop
    except ValueError as exc:
        raise InvalidRequest(f"kill: {exc} (a name such as SIGTERM, or a number)") from exc
    await blocking(engine_of(request).kill_container, _ref(request), signal)
    return answer(None)


async def remove(request: Request) -> Response:
    await blocking(engine_of(request).remove_container, _ref(request), force=query_bool(request, "force"))
    return answer(None)


async def wait(request: Request) -> Response:
    """Block until the container is neither created nor running; answer its exit code.

    Wakes on the container's `die`/`destroy` events, and once a second to notice a client that
    gave up, so an abandoned wait does not linger until the container exits.
    """
    engine = engine_of(request)
    record = await blocking(engine.containers.get, _ref(request))

    def concerns(event: Event) -> bool:
        return event.actor == record.id and event.action in ("die", "destroy")

    async with engine.events.subscribe(concerns) as sub:
        try:
            # Re-read after subscribing so an exit between the two reads is not missed.
            record = await blocking(engine.state.get_container, record.id)
            while record.is_live or record.status is ContainerStatus.CREATING:
                try:
                    if await asyncio.wait_for(sub.queue.get(), WAIT_TICK_S) is None:
                        raise RuntimeFailure("event stream overflowed while waiting")
                except TimeoutError:
                    if await request.is_disconnected():
                        return answer(None)
                record = await blocking(engine.state.get_container, record.id)
        except NotFound:
            raise RuntimeFailure(f"container {record.name} was removed while waiting") from None
    return answer(WaitResult(exit_code=record.exit_code if record.exit_code is not None else -1))


async def logs(request: Request) -> Response:
    engine = engine_of(request)
    record = await blocking(engine.containers.get, _ref(request))
    tail = None if request.query_params.get("tail") == "all" else query(request, "tail", int)

    async def finished() -> bool:
        try:
            current = await blocking(engine.state.get_container, record.id)
        except NotFound:
            return True
        return not current.is_live

    return ndjson(
        stream_logs(
            engine.containers.log_path(record),
            since=_since(request),
            tail=tail,
            follow=query_bool(request, "follow"),
            finished=finished,
        )
    )


async def exec_(request: Request) -> Response:
    body = await read_body(request, ExecRequest)
    return answer(await blocking(engine_of(request).containers.exec, _ref(request), body))


async def top(request: Request) -> Response:
    return answer(await blocking(engine_of(request).containers.top, _ref(request)))


_C = "/containers/{ref}"
ENDPOINTS = [
    Endpoint("POST", "/containers", create, "Create a container", ContainerCreate, ContainerRecord),
    Endpoint(
        "GET",
        "/containers",
        list_all,
        "List containers (any state)",
        answer=ContainerRecord,
        answer_is_list=True,
        params=(
            Param("project"),
            Param("service"),
            Param("label", description="key or key=value", repeated=True),
        ),
    ),
    Endpoint("GET", _C, inspect, "Inspect a container", answer=ContainerRecord, params=(_ID,)),
    Endpoint(
        "POST", f"{_C}/start", start, "Start (or re-create and start)", answer=ContainerRecord, params=(_ID,)
    ),
    Endpoint(
        "POST",
        f"{_C}/stop",
        stop,
        "Stop signal, then SIGKILL after timeout seconds",
        answer=ContainerRecord,
        params=(_ID, Param("timeout", "number")),
    ),
    Endpoint(
        "POST",
        f"{_C}/restart",
        restart,
        "Stop then start",
        answer=ContainerRecord,
        params=(_ID, Param("timeout", "number")),
    ),
    Endpoint("POST", f"{_C}/kill", kill, "Send a signal", params=(_ID, Param("signal"))),
    Endpoint("DELETE", _C, remove, "Remove (force: kill first)", params=(_ID, Param("force", "boolean"))),
    Endpoint(
        "POST", f"{_C}/wait", wait, "Block until exit; answer the exit code", answer=WaitResult, params=(_ID,)
    ),
    Endpoint(
        "GET",
        f"{_C}/logs",
        logs,
        "Log lines (NDJSON); follow streams until exit",
        stream=LogLine,
        params=(
            _ID,
            Param("follow", "boolean"),
            Param("since", description="unix seconds or ISO 8601"),
            Param("tail", "integer"),
        ),
    ),
    Endpoint(
        "POST",
        f"{_C}/exec",
        exec_,
        "Run a process (no TTY) and collect its output",
        ExecRequest,
        ExecResult,
        params=(_ID,),
    ),
    Endpoint("GET", f"{_C}/top", top, "Processes of a running container", answer=TopResult, params=(_ID,)),
]
