"""Images in and out: bootstrap a base, load and save archives, history, tag, and a container's
filesystem as an image (`commit`) or a tar (`export`).

Archives travel in the request and answer bodies, not as host paths, so a client on another
machine (or in another mount namespace) can load and save. Bodies are spooled to the engine's
tmp directory first, as `api/archive.py` does: the work runs in the threadpool while the
socket is read and written on the event loop. Bootstrapping runs in the engine because the base
must be made where the store is, with that machine's apt mirror and debootstrap cache; it
streams its progress as NDJSON because debootstrap takes minutes the first time.

These routes are listed before `api/images.py`'s: `GET /images/{ref:path}` would otherwise
swallow `/images/get` and `/images/NAME/history`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from stackup.errors import Conflict, InvalidRequest, StackupError
from stackup.runtime.engine.api.archive import _chunks
from stackup.runtime.engine.api.routing import Endpoint, Param, answer, blocking, engine_of, ndjson, read_body
from stackup.runtime.engine.containers import snapshot
from stackup.runtime.engine.images.debian import DebianBase, bootstrap_debian
from stackup.runtime.engine.images.history import image_history
from stackup.runtime.engine.images.save import write_archive
from stackup.runtime.engine.images.testimage import DEFAULT_PATH, build_busybox_rootfs
from stackup.runtime.engine.service import EngineService
from stackup.runtime.wire.images import BootstrapProgress, BootstrapRequest, HistoryEntry, Image
from stackup.runtime.wire.records import EventType

_REF = Param("ref", where="path", description="reference, id or id prefix")
_CONTAINER = Param("ref", where="path", description="container id, name or id prefix")
BASES = "busybox, debian:SUITE, debian:SUITE-slim"


def _target(request: Request, required: bool = True) -> str | None:
    target = request.query_params.get("target") or None
    if required and target is None:
        raise InvalidRequest("name the new reference (?target=NAME:TAG)")
    return target


def make_base(engine: EngineService, body: BootstrapRequest, progress: Callable[[str], None]) -> Image:
    """The base image `body.base` in the store (made once; a later call re-imports the cache)."""
    debian = DebianBase.parse(body.base)
    if debian is not None:
        image = bootstrap_debian(engine.images, debian, body.ref or debian.name, body.mirror, progress)
    elif body.base == "busybox":
        with tempfile.TemporaryDirectory(dir=engine.paths.tmp, prefix="busybox-") as tmp:
            progress("building a busybox rootfs from /bin/busybox")
            rootfs = build_busybox_rootfs(Path(tmp) / "rootfs")
            image = engine.images.import_rootfs(
                rootfs, body.ref or "stackup/busybox:latest",
                config={"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]}, created_by="stackup busybox rootfs")
    else:
        raise InvalidRequest(f'unknown base "{body.base}" (available: {BASES})')
    engine.events.publish(EventType.IMAGE, "import", image.id, {"name": ",".join(image.refs)})
    return image


async def bootstrap_route(request: Request) -> Response:
    body = await read_body(request, BootstrapRequest)
    if body.base != "busybox" and DebianBase.parse(body.base) is None:
        raise InvalidRequest(f'unknown base "{body.base}" (available: {BASES})')
    engine = engine_of(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[BootstrapProgress | None] = asyncio.Queue()

    def put(item: BootstrapProgress | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            image = make_base(engine, body, lambda line: put(BootstrapProgress(line=line)))
            put(BootstrapProgress(image=image))
        except StackupError as exc:
            put(BootstrapProgress(error=str(exc)))
        except Exception as exc:  # the status is sent: a bug is reported in the stream too
            put(BootstrapProgress(error=f"engine bug: {type(exc).__name__}: {exc}"))
        finally:
            put(None)

    worker = asyncio.ensure_future(blocking(work))

    async def items() -> AsyncIterator[BootstrapProgress]:
        while (item := await queue.get()) is not None:
            yield item
        await worker

    return ndjson(items())


async def load_route(request: Request) -> Response:
    engine = engine_of(request)
    with tempfile.NamedTemporaryFile(dir=engine.paths.tmp, prefix="load-", suffix=".tar") as spool:
        async for chunk in request.stream():
            await blocking(spool.write, chunk)
        await blocking(spool.flush)
        images = await blocking(engine.images.import_archive, Path(spool.name))
    for image in images:
        engine.events.publish(EventType.IMAGE, "load", image.id, {"name": ",".join(image.refs)})
    return answer(images, status_code=201)


async def _spooled(engine: EngineService, write: Callable[..., None], *args: object) -> StreamingResponse:
    spool = tempfile.TemporaryFile(dir=engine.paths.tmp)  # noqa: SIM115 - closed by `_chunks` once sent
    try:
        await blocking(write, *args, spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(_chunks(spool), media_type="application/x-tar")


async def save_route(request: Request) -> Response:
    engine = engine_of(request)
    names = request.query_params.getlist("names")
    return await _spooled(engine, write_archive, engine.images, names)


async def history_route(request: Request) -> Response:
    engine = engine_of(request)
    return answer(await blocking(image_history, engine.images, request.path_params["ref"]))


def commit_container(engine: EngineService, ref: str, target: str | None, comment: str) -> Image:
    record = engine.containers.get(ref)
    with engine.containers.locked(record.id):
        record = engine.state.get_container(record.id)
        if not record.image_id:
            raise Conflict(f"container {record.name} has no image to commit on top of")
        image = snapshot.commit(engine.paths, engine.images, record, target, comment=comment)
    engine.containers.emit("commit", record, image=image.id)
    engine.events.publish(EventType.IMAGE, "commit", image.id, {"name": target or "", "container": record.id})
    return image


async def commit_route(request: Request) -> Response:
    comment = request.query_params.get("comment", "")
    image = await blocking(commit_container, engine_of(request), request.path_params["ref"],
                           _target(request, required=False), comment)
    return answer(image, status_code=201)


def export_container(engine: EngineService, ref: str, out: object) -> None:
    record = engine.containers.get(ref)
    with engine.containers.locked(record.id):
        record = engine.state.get_container(record.id)
        snapshot.export(engine.paths, engine.images, record, out)  # type: ignore[arg-type]
    engine.containers.emit("export", record)


async def export_route(request: Request) -> Response:
    engine = engine_of(request)
    return await _spooled(engine, export_container, engine, request.path_params["ref"])


ENDPOINTS = [
    Endpoint("POST", "/images/bootstrap", bootstrap_route,
             f"Make a base image without a registry ({BASES}); streams progress",
             BootstrapRequest, stream=BootstrapProgress),
    Endpoint("POST", "/images/load", load_route,
             "Load a docker-save / podman-save / OCI archive sent as the body", answer=Image,
             answer_is_list=True),
    Endpoint("GET", "/images/get", save_route, "Images as one docker-archive + OCI layout tar",
             params=(Param("names", repeated=True, description="references or ids"),)),
    Endpoint("GET", "/images/{ref:path}/history", history_route, "The steps that made an image, newest first",
             answer=HistoryEntry, answer_is_list=True, params=(_REF,)),
    Endpoint("POST", "/containers/{ref}/commit", commit_route,
             "A new image: the container's image plus its changes as one layer", answer=Image,
             params=(_CONTAINER, Param("target", description="NAME[:TAG] for the image"), Param("comment"))),
    Endpoint("GET", "/containers/{ref}/export", export_route, "The container's root filesystem as a tar",
             params=(_CONTAINER,)),
]  # fmt: skip
