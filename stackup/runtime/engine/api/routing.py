"""What every route module of the engine's API shares: the `Endpoint` description, running
blocking calls off the event loop, reading bodies and query parameters, writing answers.

Route modules import this and `app.py` imports the route modules, never the other way round.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from stackup import keyvalue
from stackup.errors import InvalidRequest
from stackup.runtime.engine.service import EngineService

_P = ParamSpec("_P")
_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Param:
    """A query or path parameter, for the OpenAPI document."""

    name: str
    type: str = "string"
    where: str = "query"
    description: str = ""
    repeated: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One operation: how to route it and how to describe it."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    answer_is_list: bool = False
    stream: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()


def engine_of(request: Request) -> EngineService:
    engine: EngineService = request.app.state.engine
    return engine


async def blocking(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run a blocking engine call in the threadpool."""
    return await run_in_threadpool(partial(func, *args, **kwargs))


async def read_body(request: Request, model: type[_M]) -> _M:
    """Validate the JSON body; a malformed one becomes a 400 through the ValidationError handler."""
    return model.model_validate_json(await request.body() or b"{}")


def answer(value: BaseModel | Sequence[BaseModel] | None, status_code: int = 200) -> Response:
    """Serialise with pydantic (datetimes, enums) rather than json.dumps."""
    if value is None:
        return Response(status_code=204)
    if isinstance(value, BaseModel):
        body = value.model_dump_json()
    else:
        body = "[" + ",".join(item.model_dump_json() for item in value) + "]"
    return Response(body, status_code=status_code, media_type="application/json")


def ndjson(items: AsyncIterator[BaseModel]) -> StreamingResponse:
    """Stream models as newline-delimited JSON, one object per line, flushed as produced."""

    async def lines() -> AsyncIterator[bytes]:
        async for item in items:
            yield item.model_dump_json().encode() + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def query(request: Request, name: str, type_: type[_T]) -> _T | None:
    """A typed query parameter (None if absent); a malformed one is a 400 via ValidationError."""
    value = request.query_params.get(name)
    return None if value is None else _adapter(type_).validate_python(value, strict=False)


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _adapter(type_: object) -> TypeAdapter[Any]:
    """One adapter per type: building one costs a schema generation (about 1 ms per request)."""
    adapter = _ADAPTERS.get(type_)
    if adapter is None:
        adapter = _ADAPTERS[type_] = TypeAdapter(type_)
    return adapter


_N = TypeVar("_N", int, float)


def query_bounded(request: Request, name: str, type_: type[_N], low: _N, high: _N) -> _N | None:
    """A numeric query parameter within [low, high] (None if absent): out of range (NaN too), the
    caller's mistake is a 400, never an overflow deep in the engine."""
    value = query(request, name, type_)
    if value is not None and not low <= value <= high:
        raise InvalidRequest(f"?{name}={request.query_params[name]}: expected a number from {low} to {high}")
    return value


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    value = query(request, name, bool)
    return default if value is None else value


def query_labels(request: Request) -> dict[str, str | None]:
    """`?label=key=value&label=key` -> {key: value, key: None} (None: the label is present)."""
    return dict(keyvalue.split(item) for item in request.query_params.getlist("label"))
