"""Image endpoints: list, import from a host path, inspect, remove, prune.

Images in use by any container (whatever its state) are never deleted: their layers are, or will
again be, that container's overlay lowerdirs.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.api.routing import (
    Endpoint,
    Param,
    answer,
    blocking,
    engine_of,
    query_bool,
    read_body,
)
from stackup.runtime.engine.images.archive import open_archive, read_images
from stackup.runtime.engine.service import EngineService
from stackup.runtime.wire.images import Image
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
        raise RuntimeFailure(f"import path must be absolute (the engine has no working directory): {path}")
    archive = request.format is ImportFormat.ARCHIVE or (
        request.format is ImportFormat.AUTO and path.exists() and _is_archive(path)
    )
    if archive:
        images = engine.images.import_archive(path, request.ref)
    elif request.ref is None:
        raise RuntimeFailure("importing a root filesystem needs a name for the image (ref)")
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
    Endpoint("GET", "/images/{ref:path}", inspect_route, "Inspect an image", answer=Image, params=(_REF,)),
    Endpoint(
        "DELETE",
        "/images/{ref:path}",
        remove_route,
        "Untag or delete an image (never one a container uses)",
        params=(_REF, Param("force", "boolean")),
    ),
]
