"""`stackup cp SERVICE:SRC DEST` and `stackup cp SRC SERVICE:DEST`, as `docker compose cp`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stackup.errors import UsageError


def _split(arg: str) -> tuple[str | None, str]:
    """`web:/etc/x` -> ("web", "/etc/x"); a local path (also `./a:b`, `/abs`) -> (None, path)."""
    head, sep, tail = arg.partition(":")
    if sep and head and "/" not in head and not head.startswith("."):
        return head, tail
    return None, arg


def cp(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SRC", help="SERVICE:PATH or a local path")],
    dest: Annotated[str, typer.Argument(metavar="DEST", help="SERVICE:PATH, a local path, or -")],
    index: Annotated[int, typer.Option("--index", help="Replica index.")] = 1,
) -> None:
    """Copy files between a service container and the local filesystem (both ways)."""
    from stackup.api.copying import copy_in, copy_out

    (src_service, src_path), (dest_service, dest_path) = _split(source), _split(dest)
    if (src_service is None) == (dest_service is None):
        raise UsageError("cp: exactly one of SRC and DEST must be SERVICE:PATH")
    stack = ctx.obj.named()
    try:
        if dest_service is not None:
            info = stack.container(dest_service, index)
            copy_in(stack.backend, info.id, Path(src_path), dest_path)
        else:
            assert src_service is not None
            info = stack.container(src_service, index)
            chunks = copy_out(stack.backend, info.id, src_path, None if dest_path == "-" else Path(dest_path))
            for chunk in chunks or ():
                sys.stdout.buffer.write(chunk)
    finally:
        stack.close()


def register(app: typer.Typer) -> None:
    app.command("cp")(cp)
