"""Project endpoints: the per-project lock a client holds for the duration of an `up` or `down`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from stackup.errors import Conflict
from stackup.runtime.engine.api.routing import Endpoint, Param, engine_of, ndjson
from stackup.runtime.engine.projectlocks import Inflight
from stackup.runtime.wire.models import ProjectLockStatus


async def lock(request: Request) -> Response:
    """Hold the project's lock for as long as this response is being read (see `projectlocks`)."""
    project = request.path_params["name"]
    holder = request.query_params.get("holder", "")[:200]
    return ndjson(engine_of(request).project_locks.hold(project, holder))


async def release(request: Request) -> Response:
    """Give the lock back at once (a live client done with it); 409 if the token does not hold it."""
    project = request.path_params["name"]
    if engine_of(request).project_locks.release(project, request.query_params.get("token", "")):
        return Response(status_code=204)
    raise Conflict(
        f"project {project}: the lock is not held with that token (already released, or another holder's)"
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/projects/{name}/lock",
        lock,
        "Hold the project's lock while the connection stays open (NDJSON: waiting, then held "
        "and a keepalive every few seconds; closing the connection releases it)",
        stream=ProjectLockStatus,
        params=(
            Param("name", where="path", description="the project"),
            Param("holder", description="who asks, shown to those who wait (e.g. 'up, pid 42')"),
        ),
    ),
    Endpoint(
        "DELETE",
        "/projects/{name}/lock",
        release,
        "Release the project's lock now (a client done with its requests); closing the lock's "
        "connection alone releases it too, after a grace period for requests still unread",
        params=(
            Param("name", where="path", description="the project"),
            Param("token", description="the token of the `held` line"),
        ),
    ),
]


MUTATING = frozenset({"POST", "PUT", "DELETE"})


class InflightMiddleware:
    """Counts the mutating requests being served, so a released project lock can wait for a dead
    client's last requests (`projectlocks`). The lock streams themselves are not counted."""

    def __init__(self, app: ASGIApp, inflight: Inflight) -> None:
        self.app = app
        self.inflight = inflight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in MUTATING
            or scope["path"].startswith("/projects/")
        ):
            await self.app(scope, receive, send)
            return
        ident = self.inflight.begin()
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight.end(ident)
