"""Image endpoints: list, import from a host path, pull, push, tag, inspect, remove, prune.

Pull and push answer 200 at once and stream `TransferEvent` lines (per-layer progress), then one
final line with the image, the pushed digest, or the error: the status line went out before the
outcome was known. The transfer runs on a thread of its own (a large pull may take minutes and
must not hold a threadpool slot), and goes on if the client disconnects, so the store never keeps
half an image because a terminal was closed.

Images in use by any container (whatever its state) are never deleted: their layers are, or will
again be, that container's overlay lowerdirs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from stackup.errors import InvalidRequest, NotFound, RuntimeFailure, StackupError
from stackup.runtime.engine import nospace
from stackup.runtime.engine.api.routing import (
    Endpoint,
    Param,
    answer,
    blocking,
    engine_of,
    ndjson,
    query_bool,
    read_body,
)
from stackup.runtime.engine.images.archive import open_archive, read_images
from stackup.runtime.engine.service import EngineService
from stackup.runtime.wire.images import Image, ImagePull, ImagePush, ImageTag, TransferEvent
from stackup.runtime.wire.models import ImageImport, ImportFormat, PruneResult
from stackup.runtime.wire.records import EventType

_REF = Param("ref", where="path", description="reference, id or id prefix")


def _is_archive(path: Path) -> bool:
    if path.is_dir():
        return (path / "manifest.json").is_file() or (path / "oci-layout").is_file()
    try:
        with open_archive(path) as archive:
            read_images(archive)
    except RuntimeFailure:
        return False
    return True


def import_image(engine: EngineService, request: ImageImport) -> list[Image]:
    path = Path(request.path)
    if not path.is_absolute():
        raise InvalidRequest(f"import path must be absolute (the engine has no working directory): {path}")
    archive = request.format is ImportFormat.ARCHIVE or (
        request.format is ImportFormat.AUTO and path.exists() and _is_archive(path)
    )
    if archive:
        images = engine.images.import_archive(path, request.ref)
    elif request.ref is None:
        raise InvalidRequest("importing a root filesystem needs a name for the image (ref)")
    else:
        images = [engine.images.import_rootfs(path, request.ref, config=request.config)]
    for image in images:
        engine.events.publish(EventType.IMAGE, "import", image.id, {"name": ",".join(image.refs)})
    return images


def _in_use(engine: EngineService) -> frozenset[str]:
    """Images any container was created from, whatever its state."""
    return frozenset(r.image_id for r in engine.state.list_containers())


def remove_image(engine: EngineService, ref: str, force: bool) -> None:
    removal = engine.images.remove(ref, force=force, in_use=_in_use(engine))
    for name in removal.untagged:
        engine.events.publish(EventType.IMAGE, "untag", name)
    for image_id in removal.deleted:
        engine.events.publish(EventType.IMAGE, "delete", image_id)


def prune_images(engine: EngineService, everything: bool) -> PruneResult:
    deleted = engine.images.prune(set(_in_use(engine)), dangling_only=not everything)
    for image_id in deleted:
        engine.events.publish(EventType.IMAGE, "delete", image_id)
    return PruneResult(removed=tuple(deleted))


_Report = Callable[[TransferEvent], None]


def _transfer(root: Path, work: Callable[[_Report], TransferEvent]) -> AsyncIterator[TransferEvent]:
    """Run `work(report)` on its own thread; yield its reports, then its result (or its error)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[TransferEvent | None] = asyncio.Queue()

    def report(event: TransferEvent) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def run() -> None:
        try:
            final = work(report)
        except Exception as exc:
            if (full := nospace.message(root, exc)) is not None:
                final = TransferEvent(error=full)
            elif isinstance(exc, StackupError):
                final = TransferEvent(error=str(exc), not_found=isinstance(exc, NotFound))
            else:  # a bug: still end the stream with a line the client can show
                final = TransferEvent(error=f"engine bug: {type(exc).__name__}: {exc}")
        loop.call_soon_threadsafe(queue.put_nowait, final)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=run, name="stackupd-transfer", daemon=True).start()

    async def events() -> AsyncIterator[TransferEvent]:
        while (event := await queue.get()) is not None:
            yield event

    return events()


def pull_image(engine: EngineService, request: ImagePull,
               report: _Report) -> TransferEvent:
    from stackup.runtime.engine.images.pulling import pull_image as pull_into

    image = pull_into(engine.images, request.ref, platform=request.platform, auth=request.auth,
                      report=report)
    engine.events.publish(EventType.IMAGE, "pull", image.id, {"name": request.ref})
    return TransferEvent(image=image)


def push_image(engine: EngineService, ref: str, request: ImagePush,
               report: _Report) -> TransferEvent:
    from stackup.runtime.engine.images.pulling import push_stored

    digest = push_stored(engine.images, ref, auth=request.auth, report=report)
    engine.events.publish(EventType.IMAGE, "push", digest, {"name": ref})
    return TransferEvent(digest=digest)


async def pull_route(request: Request) -> Response:
    body = await read_body(request, ImagePull)
    engine = engine_of(request)
    return ndjson(_transfer(engine.paths.root, lambda report: pull_image(engine, body, report)))


async def push_route(request: Request) -> Response:
    body = await read_body(request, ImagePush)
    engine, ref = engine_of(request), request.path_params["ref"]
    return ndjson(_transfer(engine.paths.root, lambda report: push_image(engine, ref, body, report)))


def tag_image(engine: EngineService, ref: str, target: str) -> Image:
    image = engine.images.tag(ref, target)
    engine.events.publish(EventType.IMAGE, "tag", image.id, {"name": target})
    return image


async def tag_route(request: Request) -> Response:
    body = await read_body(request, ImageTag)
    return answer(await blocking(tag_image, engine_of(request), request.path_params["ref"], body.target),
                  status_code=201)


async def list_route(request: Request) -> Response:
    return answer(await blocking(engine_of(request).images.list))


async def import_route(request: Request) -> Response:
    body = await read_body(request, ImageImport)
    return answer(await blocking(import_image, engine_of(request), body), status_code=201)


async def inspect_route(request: Request) -> Response:
    return answer(await blocking(engine_of(request).images.get, request.path_params["ref"]))


async def remove_route(request: Request) -> Response:
    ref = request.path_params["ref"]
    await blocking(remove_image, engine_of(request), ref, query_bool(request, "force"))
    return answer(None)


async def prune_route(request: Request) -> Response:
    return answer(await blocking(prune_images, engine_of(request), query_bool(request, "all")))


ENDPOINTS = [
    Endpoint("GET", "/images", list_route, "List images", answer=Image, answer_is_list=True),
    Endpoint(
        "POST",
        "/images/import",
        import_route,
        "Import a rootfs (dir or tar) or an image archive from a host path",
        ImageImport,
        Image,
        answer_is_list=True,
    ),
    Endpoint(
        "POST",
        "/images/prune",
        prune_route,
        "Delete unused untagged images (all unused with all=true)",
        answer=PruneResult,
        params=(Param("all", "boolean"),),
    ),
    Endpoint("POST", "/images/pull", pull_route, "Pull an image from a registry (NDJSON progress, then "
             "the image or the error)", ImagePull, stream=TransferEvent),
    Endpoint("POST", "/images/{ref:path}/push", push_route, "Push an image to its registry (NDJSON "
             "progress, then the digest or the error)", ImagePush, stream=TransferEvent, params=(_REF,)),
    Endpoint("POST", "/images/{ref:path}/tag", tag_route, "Give an image another reference", ImageTag,
             Image, params=(_REF,)),
    Endpoint("GET", "/images/{ref:path}", inspect_route, "Inspect an image", answer=Image, params=(_REF,)),
    Endpoint(
        "DELETE",
        "/images/{ref:path}",
        remove_route,
        "Untag or delete an image (never one a container uses)",
        params=(_REF, Param("force", "boolean")),
    ),
]
