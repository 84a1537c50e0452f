"""`stackup build [SERVICE...]` and `stackup builder prune|du`: images from the stack's `build`
sections, and the engine's build cache.

Progress is one line per step event on stderr (`[stage 2/5] RUN ...`, `CACHED`, the step's output,
`DONE 1.2s`); `-q` prints only the image ids on stdout. A failed step exits 1 with its Dockerfile
line and the last lines of its output (`BuildFailed`); a wrong Dockerfile exits 3.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli.buildfast import build_args
from stackup.cli.context import GlobalOptions
from stackup.cli.output import write

if TYPE_CHECKING:
    from stackup.api.stack import Stack

builder_app = typer.Typer(help="Manage the native engine's build cache.", no_args_is_help=True)


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
    args = build_args(build_arg)
    stack = opts.stack(names)

    def show(service: str, line: str) -> None:
        sys.stderr.write(f"{service:12} {line}\n")
        sys.stderr.flush()

    progress = None if quiet or str(opts.progress) == "quiet" else show
    built = stack.build(names, no_cache=no_cache, pull=pull, build_args=args,
                        progress=progress)
    for service, image_id in built.items():
        write(image_id if quiet else f"{service}: {image_id}")
    _remember(stack, names)


def _remember(stack: Stack, names: tuple[str, ...]) -> None:
    """Record what a later identical `stackup build` must find to skip loading (`cli/buildfast.py`)."""
    from stackup.cli.buildfast import remember, split_build_argv
    from stackup.cli.context import ARGV
    from stackup.cli.fastpath import discover
    from stackup.runtime.native.build import request_of

    loaded = stack.loaded
    if loaded is None or loaded.inputs is None or not loaded.inputs.complete:
        return
    parsed = split_build_argv(ARGV)
    if parsed is None:
        return
    stack_files, env_files = discover(parsed[0], Path.cwd())
    if stack_files != [str(f) for f in loaded.files]:
        return  # discovery depends on something the shortcut cannot see: never cache
    specs = stack.build_specs(names)
    if any(spec.secret_values for spec in specs.values()):
        return  # a secret's value must never be written down: such builds take the full path
    builds = [(service, request_of(spec).model_dump(mode="json")) for service, spec in specs.items()]
    inputs = {"files": dict(loaded.inputs.files), "variables": dict(loaded.inputs.variables)}
    try:
        remember(ARGV, project=loaded.project.name, stack_files=stack_files, env_files=env_files,
                 inputs=inputs, builds=builds)
    except OSError:
        return  # no record: the next build takes the full path


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
