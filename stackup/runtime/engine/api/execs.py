"""Exec sessions and terminals: create, inspect, resize; starting one and attaching to a
container are upgraded connections (`streams.py`), listed here so the API document has them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from stackup.runtime.engine.api.routing import (
    Endpoint,
    Param,
    answer,
    blocking,
    engine_of,
    query_bounded,
    read_body,
)
from stackup.runtime.wire.models import ErrorBody, ErrorKind
from stackup.runtime.wire.streams import UPGRADE_PROTOCOL, ExecCreate, ExecInspect

_REF = Param("ref", where="path", description="container id, name or id prefix")
_EXEC = Param("id", where="path", description="exec session id (or a prefix of 12+ characters)")
_SIZE = (Param("h", "integer", description="rows"), Param("w", "integer", description="columns"))


def _size(request: Request) -> tuple[int, int]:
    rows = query_bounded(request, "h", int, 0, 65535)  # a winsize field is 16 bits
    cols = query_bounded(request, "w", int, 0, 65535)
    return rows or 24, cols or 80


async def create(request: Request) -> Response:
    body = await read_body(request, ExecCreate)
    ref: str = request.path_params["ref"]
    return answer(await blocking(engine_of(request).create_exec, ref, body), status_code=201)


async def inspect(request: Request) -> Response:
    session = await blocking(engine_of(request).execs.get, request.path_params["id"])
    return answer(session.inspect())


async def resize_exec(request: Request) -> Response:
    await blocking(engine_of(request).resize_exec, request.path_params["id"], *_size(request))
    return answer(None)


async def resize_container(request: Request) -> Response:
    await blocking(engine_of(request).resize_container, request.path_params["ref"], *_size(request))
    return answer(None)


async def needs_upgrade(_request: Request) -> Response:
    """Reached only without the upgrade headers: the upgraded request never gets to Starlette."""
    body = ErrorBody(
        kind=ErrorKind.INVALID,
        message=f"this endpoint streams: send `Connection: Upgrade` and `Upgrade: {UPGRADE_PROTOCOL}`",
    )
    return Response(body.model_dump_json(), status_code=400, media_type="application/json")


async def start(request: Request) -> Response:
    return await needs_upgrade(request)


async def attach(request: Request) -> Response:
    return await needs_upgrade(request)


ENDPOINTS = [
    Endpoint(
        "POST", "/containers/{ref}/execs", create, "Create an exec session (start it with /exec/{id}/start)",
        ExecCreate, ExecInspect, params=(_REF,),
    ),
    Endpoint(
        "POST", "/exec/{id}/start", start,
        "Upgraded connection (Upgrade: tcp, answered 101): run the session's process with its stdio "
        "as the stream (framed without a TTY); closed once the process is reaped",
        params=(_EXEC, *_SIZE),
    ),
    Endpoint("GET", "/exec/{id}/json", inspect, "An exec session and, once ended, its exit code",
             answer=ExecInspect, params=(_EXEC,)),
    Endpoint("POST", "/exec/{id}/resize", resize_exec, "Resize an exec session's TTY",
             params=(_EXEC, *_SIZE)),
    Endpoint(
        "POST", "/containers/{ref}/attach", attach,
        "Upgraded connection (Upgrade: tcp, answered 101) to the main process's stdio, through its conmon",
        params=(_REF, Param("stdin", "boolean", description="send the client's input to the process")),
    ),
    Endpoint("POST", "/containers/{ref}/resize", resize_container, "Resize the main process's TTY",
             params=(_REF, *_SIZE)),
]  # fmt: skip
