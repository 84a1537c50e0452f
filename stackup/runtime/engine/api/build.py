"""Build endpoints: `POST /build` streams a build's progress; the build cache's usage and prune;
uploaded contexts for remote clients (`POST /build/contexts`, `DELETE /build/contexts/{id}`).

An uploaded context is a tar unpacked with the standard library's `data` filter, which refuses
what a context has no business holding: absolute names, `..`, links leaving the directory,
device nodes; setuid bits are dropped. It lives under the engine's tmp directory and is removed
by the client after its build, or with every other leftover when the engine starts.

The build runs in a worker thread; its events cross to the response through an asyncio queue.
Every failure, before or during the steps, is the stream's last event (`error`, with the step,
its Dockerfile line and its output's tail), so the client reads one format whatever happened.
A client that goes away does not stop the build (its layers stay cached for the next one).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from stackup.errors import DockerfileError, NotFound, StackupError, UsageError
from stackup.runtime.engine import nospace
from stackup.runtime.engine.api.routing import Endpoint, answer, blocking, engine_of, ndjson, read_body
from stackup.runtime.engine.builder import executor
from stackup.runtime.engine.builder.failures import BuildError, NotCached
from stackup.runtime.wire.build import (
    BuildCachePrune,
    BuildCacheUsage,
    BuildEvent,
    BuildEventKind,
    BuildRequest,
    ContextUpload,
)
from stackup.runtime.wire.records import EventType

log = logging.getLogger(__name__)


def _error_event(exc: BaseException) -> BuildEvent:
    if isinstance(exc, BuildError):
        return BuildEvent(
            kind=BuildEventKind.ERROR,
            step=exc.step,
            line=exc.line,
            text=exc.message,
            tail=exc.tail,
            error_kind="failure",
        )
    if isinstance(exc, NotCached):
        return BuildEvent(kind=BuildEventKind.ERROR, text=exc.message, error_kind="not_cached")
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


_CONTEXT_ID = re.compile(r"^[0-9a-f]{32}$")


def contexts_dir(tmp: Path) -> Path:
    return tmp / "build-contexts"


def _unpack(archive: Path, directory: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(directory, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise UsageError(f"build context upload refused: {exc}") from None


async def context_upload_route(request: Request) -> Response:
    engine = engine_of(request)
    token = secrets.token_hex(16)
    directory = contexts_dir(engine.paths.tmp) / token
    await blocking(directory.mkdir, parents=True)
    with tempfile.NamedTemporaryFile(dir=engine.paths.tmp, prefix="context-", suffix=".tar") as spool:
        async for chunk in request.stream():
            await blocking(spool.write, chunk)
        await blocking(spool.flush)
        await blocking(_unpack, Path(spool.name), directory)
    return answer(ContextUpload(id=token, path=str(directory)))


async def context_remove_route(request: Request) -> Response:
    token = request.path_params["id"]
    if not _CONTEXT_ID.match(token):
        raise NotFound(f"no uploaded build context {token!r}")
    await blocking(shutil.rmtree, contexts_dir(engine_of(request).paths.tmp) / token, ignore_errors=True)
    return answer(None)


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
    Endpoint(
        "POST", "/build/contexts", context_upload_route, "Upload a build context (tar)", answer=ContextUpload
    ),
    Endpoint("DELETE", "/build/contexts/{id}", context_remove_route, "Remove an uploaded build context"),
    Endpoint("POST", "/build/prune", prune_route, "Prune the build cache", BuildCachePrune, BuildCacheUsage),
]
