"""What a remote engine cannot do: read files that exist only on the client's machine.

Requests that carry file *contents* work on any engine: `cp` and `watch` sync send tar streams,
`image load` streams the archive, named volumes live on the engine. Requests that carry a *path*
are read by the engine from its own filesystem: a bind mount's source (and so file-based
`secrets` and `configs`), a build's secret files and extra contexts, `image import PATH` (a
build's main context is uploaded instead: `contexts.py`). Against a remote engine
(`tcp://`, `ssh://`) that path names the wrong machine's file, or none at all. Docker silently
mounts whatever the daemon's host has at that path; stackup refuses before anything is created,
saying what to do instead, since a wrong mount is worse than none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackup.errors import UsageError
from stackup.runtime.native.dialers import Dialer
from stackup.runtime.wire.models import ContainerCreate, MountKind

if TYPE_CHECKING:
    from stackup.runtime.wire.build import BuildRequest


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
    """The context itself travels (`contexts.py`); secret files and extra contexts named by path
    do not yet: refused on a remote engine rather than read from the wrong machine."""
    if not dialer.remote:
        return
    local = [f"secret {key}" for key in request.secrets] + [
        f"additional context {key}" for key, value in request.additional_contexts.items()
        if "://" not in value  # docker-image://, https:// are fetched by the engine itself
    ]  # fmt: skip
    if local:
        raise UsageError(
            f"build of {request.context}: {', '.join(local)} names a file on this machine, which the "
            f"engine at {dialer} (another machine) cannot read. Build with a local engine and push the "
            "image to a registry the remote engine pulls from, or `image save` | `image load`."
        )


def check_import(dialer: Dialer, path: str) -> None:
    if dialer.remote:
        raise UsageError(
            f"image import {path}: the engine at {dialer} is on another machine and cannot read it; "
            "send an image archive with `stackup image load` instead"
        )
