"""Volume endpoints: create, list (by label), inspect, remove. Volumes are never removed implicitly."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from stackup.runtime.engine.api.routing import (
    Endpoint,
    Param,
    answer,
    blocking,
    engine_of,
    query_labels,
    read_body,
)
from stackup.runtime.wire.models import VolumeCreate
from stackup.runtime.wire.records import VolumeRecord

_NAME = Param("name", where="path")


async def create_volume(request: Request) -> Response:
    body = await read_body(request, VolumeCreate)
    volumes = engine_of(request).volumes
    record = await blocking(volumes.create, body.name, body.labels, body.driver, body.options)
    return answer(record, status_code=201)


async def list_volumes(request: Request) -> Response:
    return answer(await blocking(engine_of(request).volumes.list_volumes, query_labels(request)))


async def inspect_volume(request: Request) -> Response:
    return answer(await blocking(engine_of(request).volumes.get, request.path_params["name"]))


async def remove_volume(request: Request) -> Response:
    await blocking(engine_of(request).volumes.remove, request.path_params["name"])
    return answer(None)


ENDPOINTS = [
    Endpoint("POST", "/volumes", create_volume, "Create a volume (idempotent)", VolumeCreate, VolumeRecord),
    Endpoint(
        "GET",
        "/volumes",
        list_volumes,
        "List volumes",
        answer=VolumeRecord,
        answer_is_list=True,
        params=(Param("label", description="key or key=value", repeated=True),),
    ),
    Endpoint(
        "GET", "/volumes/{name}", inspect_volume, "Inspect a volume", answer=VolumeRecord, params=(_NAME,)
    ),
    Endpoint(
        "DELETE", "/volumes/{name}", remove_volume, "Remove an unused volume and its data", params=(_NAME,)
    ),
]
