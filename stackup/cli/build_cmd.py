"""`stackup build [SERVICE...]` and `stackup builder prune|du`: images from the stack's `build`
sections, and the engine's build cache.

Progress is one line per step event on stderr (`[stage 2/5] RUN ...`, `CACHED`, the step's output,
`DONE 1.2s`); `-q` prints only the image ids on stdout. A failed step exits 1 with its Dockerfile
line and the last lines of its output (`BuildFailed`); a wrong Dockerfile exits 3.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from stackup.cli.context import GlobalOptions
from stackup.cli.output import write
from stackup.errors import UsageError

builder_app = typer.Typer(help="Manage the native engine's build cache.", no_args_is_help=True)


def _args(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f'--build-arg expects KEY=VALUE, got "{item}"')
        if not sep:  # `--build-arg KEY` takes the value from the environment, as Compose does
            if key not in os.environ:
                continue
            value = os.environ[key]
        out[key] = value
    return out


def build(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the build cache.")] = False,
    pull: Annotated[bool, typer.Option("--pull", help="Always refresh the base images.")] = False,
    build_arg: Annotated[list[str] | None, typer.Option("--build-arg", help="KEY=VALUE (repeatable)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the image ids.")] = False,
) -> None:
    """Build the images of services with a `build` section (all of them by default)."""
    opts: GlobalOptions = ctx.obj
    names = tuple(services or ())
    args = _args(build_arg)
    stack = opts.stack(names)

    def show(service: str, line: str) -> None:
        sys.stderr.write(f"{service:12} {line}\n")
        sys.stderr.flush()

    progress = None if quiet or str(opts.progress) == "quiet" else show
    built = stack.build(names, no_cache=no_cache, pull=pull, build_args=args,
                        progress=progress)
    for service, image_id in built.items():
        write(image_id if quiet else f"{service}: {image_id}")


@builder_app.command("prune")
def builder_prune(
    keep_storage: Annotated[
        int, typer.Option("--keep-storage", help="Keep this many bytes of the most recently used cache.")
    ] = 0,
) -> None:
    """Remove build cache entries (all, or the least recently used beyond --keep-storage)."""
    from stackup.runtime.native.launcher import ensure_engine

    usage = ensure_engine().prune_build_cache(keep_bytes=keep_storage)
    write(f"removed {usage.removed} cache entries, reclaimed {usage.reclaimed / 1e6:.1f}MB")


@builder_app.command("du")
def builder_du() -> None:
    """Build cache usage: entries and the size of the layers they keep."""
    from stackup.runtime.native.launcher import ensure_engine

    usage = ensure_engine().build_cache()
    write(f"{usage.entries} entries, {usage.bytes / 1e6:.1f}MB")


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.add_typer(builder_app, name="builder")
