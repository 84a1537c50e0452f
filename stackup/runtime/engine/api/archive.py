"""Copying files into and out of a container as tar streams (`stackup cp`, Docker's archive API),
and applying a batch of changes to it (`stackup watch`'s sync).

The request body is spooled to a file under the engine's tmp directory before extraction and
an answer is built in one before it is sent: extraction and packing walk the container's
filesystem with blocking calls (`containers/files.py`), which run in the threadpool, while the
socket is read and written on the event loop.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from typing import IO

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from stackup.errors import InvalidRequest
from stackup.runtime.engine.api.routing import Endpoint, Param, answer, blocking, engine_of, query_bool
from stackup.runtime.wire.models import SyncResult

_CHUNK = 1 << 16
_PARAMS = (
    Param("ref", where="path", description="container id, name or id prefix"),
    Param("path", description="absolute path in the container (for PUT: an existing directory)"),
)


def _path(request: Request) -> str:
    path = request.query_params.get("path", "")
    if not path:
        raise InvalidRequest("the container path is missing (?path=)")
    return path


async def put(request: Request) -> Response:
    engine = engine_of(request)
    path = _path(request)
    with tempfile.TemporaryFile(dir=engine.paths.tmp) as spool:
        async for chunk in request.stream():
            await blocking(spool.write, chunk)
        spool.seek(0)
        await blocking(engine.copy_to, request.path_params["ref"], path, spool,
                       keep_owner=query_bool(request, "copyUIDGID"))  # fmt: skip
    return answer(None)


async def sync(request: Request) -> Response:
    engine = engine_of(request)
    path = _path(request)
    body = io.BytesIO(await request.body())  # the client sends a batch whole (`EngineClient.sync`)
    counts = await blocking(engine.sync, request.path_params["ref"], path, body)
    return answer(SyncResult(written=counts.written, deleted=counts.deleted))


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(_CHUNK):
            yield chunk
    finally:
        spool.close()


async def get(request: Request) -> Response:
    engine = engine_of(request)
    path = _path(request)
    spool = tempfile.TemporaryFile(dir=engine.paths.tmp)  # noqa: SIM115 - closed by `_chunks` once sent
    try:
        await blocking(engine.copy_from, request.path_params["ref"], path, spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(_chunks(spool), media_type="application/x-tar")


ENDPOINTS = [
    Endpoint("PUT", "/containers/{ref}/archive", put,
             "Extract a tar body into a directory of the container (running or stopped)",
             params=(*_PARAMS, Param("copyUIDGID", "boolean", description="keep the archive's owners"))),
    Endpoint("GET", "/containers/{ref}/archive", get, "A path of the container as a tar stream",
             params=_PARAMS),
    Endpoint("POST", "/containers/{ref}/sync", sync,
             "Apply a tar of changes (OCI whiteouts `.wh.NAME` delete) under a directory, made if missing",
             answer=SyncResult, params=_PARAMS),
]  # fmt: skip
