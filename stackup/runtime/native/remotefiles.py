"""What a remote engine cannot do: read files that exist only on the client's machine.

Requests that carry file *contents* work on any engine: `cp` and `watch` sync send tar streams,
`image load` streams the archive, named volumes live on the engine. Requests that carry a *path*
are read by the engine from its own filesystem: a bind mount's source (and so file-based
`secrets` and `configs`), a build context, `image import PATH`. Against a remote engine
(`tcp://`, `ssh://`) that path names the wrong machine's file, or none at all. Docker silently
mounts whatever the daemon's host has at that path; stackup refuses before anything is created,
saying what to do instead, since a wrong mount is worse than none.
"""

from __future__ import annotations

from stackup.errors import UsageError
from stackup.runtime.native.dialers import Dialer
from stackup.runtime.wire.build import BuildRequest
from stackup.runtime.wire.models import ContainerCreate, MountKind


def check_create(dialer: Dialer, request: ContainerCreate) -> None:
    """A bind mount's source is a path on the client: refused on a remote engine."""
    if not dialer.remote:
        return
    for mount in request.mounts:
        if mount.kind is MountKind.BIND:
            raise UsageError(
                f"container {request.name}: bind mount {mount.source} -> {mount.target}: the engine at "
                f"{dialer} is on another machine and cannot see this machine's files. Use a named volume "
                "(filled with `stackup cp` or `watch` sync), bake the files into the image, or run "
                "stackup on the engine's host."
            )


def check_build(dialer: Dialer, request: BuildRequest) -> None:
    """A build context is read where the engine runs: refused on a remote engine."""
    if dialer.remote:
        raise UsageError(
            f"build of {request.context}: the engine at {dialer} is on another machine and builds read "
            "their context from its filesystem. Build on the engine's host (or with a local engine) and "
            "push the image to a registry the remote engine can pull from, or `image save` | `image load`."
        )


def check_import(dialer: Dialer, path: str) -> None:
    if dialer.remote:
        raise UsageError(
            f"image import {path}: the engine at {dialer} is on another machine and cannot read it; "
            "send an image archive with `stackup image load` instead"
        )
