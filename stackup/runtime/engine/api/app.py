"""The engine's HTTP API: the Starlette app, error answers and the OpenAPI document.

Each route module (`system`, `images`, `volumes`, `networks`, `containers`) declares its
endpoints as `Endpoint` values: the handler plus the models it reads and answers with. The
Starlette routes *and* the OpenAPI document are built from that one list, so the document cannot
describe an endpoint that does not exist or miss one that does.

Handlers are async; anything that blocks (SQLite, the OCI runtime, conmon, the filesystem) runs in the
threadpool through `routing.blocking`, so one slow `stop` never stalls `/events` or `/_ping`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stackup.errors import (
    Conflict,
    DockerfileError,
    InvalidRequest,
    NotFound,
    PlanError,
    ProjectBusy,
    StackupError,
    UsageError,
)
from stackup.registry.errors import InvalidReference
from stackup.runtime.engine import nospace
from stackup.runtime.engine.api import archive as api_archive
from stackup.runtime.engine.api import build as api_build
from stackup.runtime.engine.api import containers as api_containers
from stackup.runtime.engine.api import execs as api_execs
from stackup.runtime.engine.api import imageio as api_imageio
from stackup.runtime.engine.api import images as api_images
from stackup.runtime.engine.api import networks as api_networks
from stackup.runtime.engine.api import projects as api_projects
from stackup.runtime.engine.api import system as api_system
from stackup.runtime.engine.api import volumes as api_volumes
from stackup.runtime.engine.api.routing import Endpoint
from stackup.runtime.engine.service import EngineService
from stackup.runtime.wire.models import API_VERSION, ErrorBody, ErrorKind


def _error(kind: ErrorKind, message: str, status: int) -> JSONResponse:
    return JSONResponse(ErrorBody(kind=kind, message=message).model_dump(mode="json"), status_code=status)


#: Errors that are the caller's: a malformed request (400) or one the object's state forbids (409).
_INVALID = (InvalidRequest, UsageError, PlanError, DockerfileError, InvalidReference)
_CONFLICT = (Conflict, ProjectBusy)


def _no_space(request: Request, exc: Exception) -> Response | None:
    """507 with one line naming the root when the filesystem under it is full, whatever raised."""
    text = nospace.message(request.app.state.engine.paths.root, exc)
    return None if text is None else _error(ErrorKind.FAILURE, text, 507)


async def _on_stackup_error(request: Request, exc: Exception) -> Response:
    if (full := _no_space(request, exc)) is not None:
        return full
    if isinstance(exc, NotFound):
        return _error(ErrorKind.NOT_FOUND, str(exc), 404)
    if isinstance(exc, _INVALID):
        return _error(ErrorKind.INVALID, str(exc), 400)
    if isinstance(exc, _CONFLICT):
        return _error(ErrorKind.FAILURE, str(exc), 409)
    return _error(ErrorKind.FAILURE, str(exc), 500)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    """Routing's own answers (no such path, wrong method) in the same body as every other error."""
    assert isinstance(exc, HTTPException)
    kind = ErrorKind.NOT_FOUND if exc.status_code == 404 else ErrorKind.INVALID
    message = f"{request.method} {request.url.path}: {exc.detail} (GET /openapi.json lists the API)"
    return _error(kind, message, exc.status_code)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    return _error(ErrorKind.INVALID, str(exc), 400)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: answer with its name; Starlette re-raises it afterwards, so uvicorn logs the traceback."""
    if (full := _no_space(request, exc)) is not None:
        return full
    return _error(ErrorKind.FAILURE, f"engine bug: {type(exc).__name__}: {exc}", 500)


def _template(path: str) -> str:
    """`/images/{ref:path}` -> `/images/{ref}`: OpenAPI names a parameter, Starlette adds its converter."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def openapi_document(endpoints: Sequence[Endpoint], version: str) -> dict[str, Any]:
    """OpenAPI 3.1 generated from the endpoint list and the pydantic models' JSON Schemas."""
    models = {m for e in endpoints for m in (e.body, e.answer, e.stream) if m is not None}
    models.add(ErrorBody)
    _keys, schemas = models_json_schema(
        [(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )

    def ref(model: type[BaseModel]) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        op: dict[str, Any] = {"summary": e.summary, "operationId": e.handler.__name__}
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "description": p.description,
                "schema": {"type": "array", "items": {"type": p.type}} if p.repeated else {"type": p.type},
            }
            for p in e.params
        ]
        if e.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(e.body)}}}
        responses: dict[str, Any] = {
            "default": {"description": "error", "content": {"application/json": {"schema": ref(ErrorBody)}}}
        }
        if e.stream is not None:
            responses["200"] = {
                "description": "newline-delimited JSON stream",
                "content": {"application/x-ndjson": {"schema": ref(e.stream)}},
            }
        elif e.answer is not None:
            schema = {"type": "array", "items": ref(e.answer)} if e.answer_is_list else ref(e.answer)
            responses["200"] = {"description": "ok", "content": {"application/json": {"schema": schema}}}
        else:
            responses["204"] = {"description": "done"}
        op["responses"] = responses
        paths.setdefault(_template(e.path), {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "stackupd", "version": version, "x-api-version": API_VERSION},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }


def all_endpoints() -> list[Endpoint]:
    """Every endpoint of the API, in document order."""
    return [
        *api_system.ENDPOINTS,
        *api_imageio.ENDPOINTS,  # before `/images/{ref:path}` swallows its paths
        *api_images.ENDPOINTS,
        *api_volumes.ENDPOINTS,
        *api_networks.ENDPOINTS,
        *api_containers.ENDPOINTS,
        *api_execs.ENDPOINTS,
        *api_archive.ENDPOINTS,
        *api_build.ENDPOINTS,
        *api_projects.ENDPOINTS,
    ]


def create_app(engine: EngineService) -> Starlette:
    """The ASGI app for one engine; `engine.request_shutdown` is how `/shutdown` stops the server."""
    endpoints = all_endpoints()
    routes = [Route(e.path, e.handler, methods=[e.method]) for e in endpoints]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(api_projects.InflightMiddleware, inflight=engine.project_locks.inflight)],
        exception_handlers={
            StackupError: _on_stackup_error,
            HTTPException: _on_http_error,
            ValidationError: _on_validation_error,
            Exception: _on_unexpected,
        },
    )
    app.state.engine = engine
    app.state.openapi = openapi_document(endpoints, engine.version)
    return app
