"""Build endpoints: `POST /build` streams a build's progress; the build cache's usage and prune.

The build runs in a worker thread; its events cross to the response through an asyncio queue.
Every failure, before or during the steps, is the stream's last event (`error`, with the step,
its Dockerfile line and its output's tail), so the client reads one format whatever happened.
A client that goes away does not stop the build (its layers stay cached for the next one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response

from stackup.errors import DockerfileError, NotFound, StackupError
from stackup.runtime.engine import nospace
from stackup.runtime.engine.api.routing import Endpoint, answer, blocking, engine_of, ndjson, read_body
from stackup.runtime.engine.builder import executor
from stackup.runtime.wire.build import (
    BuildCachePrune,
    BuildCacheUsage,
    BuildEvent,
    BuildEventKind,
    BuildRequest,
)
from stackup.runtime.wire.records import EventType

log = logging.getLogger(__name__)


def _error_event(exc: BaseException) -> BuildEvent:
    if isinstance(exc, executor.BuildError):
        return BuildEvent(
            kind=BuildEventKind.ERROR,
            step=exc.step,
            line=exc.line,
            text=exc.message,
            tail=exc.tail,
            error_kind="failure",
        )
    if isinstance(exc, DockerfileError):
        return BuildEvent(kind=BuildEventKind.ERROR, line=exc.line, text=exc.message, error_kind="dockerfile")
    if isinstance(exc, NotFound):
        return BuildEvent(kind=BuildEventKind.ERROR, text=exc.message, error_kind="not_found")
    if isinstance(exc, StackupError):
        return BuildEvent(kind=BuildEventKind.ERROR, text=exc.message, error_kind="failure")
    log.exception("build failed", exc_info=exc)
    return BuildEvent(
        kind=BuildEventKind.ERROR, text=f"engine bug: {type(exc).__name__}: {exc}", error_kind="failure"
    )


async def build_route(request: Request) -> Response:
    body = await read_body(request, BuildRequest)
    engine = engine_of(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[BuildEvent | None] = asyncio.Queue()

    def emit(event: BuildEvent) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def work() -> None:
        try:
            image = executor.build(engine.paths, engine.images, body, emit)
            engine.events.publish(EventType.IMAGE, "build", image.id, {"name": ",".join(image.refs)})
        except BaseException as exc:
            event = _error_event(exc)
            if (full := nospace.message(engine.paths.root, exc)) is not None:
                event = event.model_copy(update={"text": full, "tail": (), "error_kind": "failure"})
            emit(event)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = loop.run_in_executor(None, work)

    async def events() -> AsyncIterator[BuildEvent]:
        while (event := await queue.get()) is not None:
            yield event
        await task

    return ndjson(events())


async def cache_route(request: Request) -> Response:
    entries, size = await blocking(executor.usage, engine_of(request).images)
    return answer(BuildCacheUsage(entries=entries, bytes=size))


async def prune_route(request: Request) -> Response:
    body = await read_body(request, BuildCachePrune)
    store = engine_of(request).images
    removed, reclaimed = await blocking(executor.prune, store, 0 if body.all else body.keep_bytes)
    entries, size = await blocking(executor.usage, store)
    return answer(BuildCacheUsage(entries=entries, bytes=size, removed=removed, reclaimed=reclaimed))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/build",
        build_route,
        "Build an image from a Dockerfile (context read from a host path)",
        BuildRequest,
        stream=BuildEvent,
    ),
    Endpoint("GET", "/build/cache", cache_route, "Build cache usage", answer=BuildCacheUsage),
    Endpoint("POST", "/build/prune", prune_route, "Prune the build cache", BuildCachePrune, BuildCacheUsage),
]
