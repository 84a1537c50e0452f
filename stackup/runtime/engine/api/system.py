"""System endpoints: liveness, version, resource usage, the API document, events, shutdown."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from stackup.runtime.engine.api.routing import (
    Endpoint,
    Param,
    answer,
    blocking,
    engine_of,
    ndjson,
    query,
    query_bool,
)
from stackup.runtime.labels import PROJECT
from stackup.runtime.wire.models import EngineInfo, VersionInfo
from stackup.runtime.wire.records import Event, EventType


async def ping(_request: Request) -> Response:
    """Cheap liveness check: answers without touching state, the runtime or the disk."""
    return PlainTextResponse("OK")


async def version(request: Request) -> Response:
    return answer(await blocking(engine_of(request).version_info))


async def info(request: Request) -> Response:
    return answer(await blocking(engine_of(request).engine_info))


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


async def shutdown(request: Request) -> Response:
    """Stop serving after this answer; containers keep running under their conmon."""
    engine_of(request).request_shutdown()
    return answer(None)


async def events(request: Request) -> Response:
    """Stream events as NDJSON: the backlog after `since_id` (if given), then live ones."""
    engine = engine_of(request)
    wanted = query(request, "type", EventType)
    project = request.query_params.get("project")

    def accept(event: Event) -> bool:
        return (wanted is None or event.type is wanted) and (
            project is None or event.attributes.get(PROJECT) == project
        )

    stream = engine.events.stream(
        after_id=query(request, "since_id", int),
        follow=query_bool(request, "follow", default=True),
        accept=accept,
    )
    return ndjson(stream)


ENDPOINTS = [
    Endpoint("GET", "/_ping", ping, "Liveness check (plain text OK)"),
    Endpoint(
        "GET",
        "/version",
        version,
        "Engine, OCI runtime (crun or runc) and conmon versions",
        answer=VersionInfo,
    ),
    Endpoint("GET", "/info", info, "Engine process and resource counts", answer=EngineInfo),
    Endpoint("GET", "/openapi.json", openapi, "This document"),
    Endpoint("POST", "/shutdown", shutdown, "Stop the engine (containers keep running)"),
    Endpoint(
        "GET",
        "/events",
        events,
        "Event stream (NDJSON): backlog after since_id, then live ones",
        stream=Event,
        params=(
            Param("since_id", "integer", description="replay events with a larger id first"),
            Param("type", description="only events about this kind of resource"),
            Param("follow", "boolean", description="false: end after the backlog (default true)"),
            Param("project", description="only events about this project's objects (its label)"),
        ),
    ),
]
