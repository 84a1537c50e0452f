"""Images out and in: `commit`, `export`, `image bootstrap|save|load|history|tag`.

`commit` and `export` name a service of a project (`Stack` methods); the `image` verbs act on
the engine's store (`stackup.api.images.Images`). Archives go to `-o FILE` or stdout and come
from `-i FILE` or stdin, as `docker save`/`load` do; binary output to a terminal is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from stackup.cli.output import err, out, write
from stackup.errors import UsageError

if TYPE_CHECKING:
    from stackup.api.images import Images
    from stackup.api.stack import Stack

OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")]
IndexOpt = Annotated[int, typer.Option("--index", help="Which replica of the service (1-based).")]


def _stack(ctx: typer.Context) -> Stack:
    return ctx.obj.named()  # type: ignore[no-any-return]


def _images() -> Images:
    from stackup.api.images import Images

    return Images.connect()


def _write_chunks(chunks: Iterable[bytes], output: Path | None) -> None:
    """To `output` (through a temporary file renamed at the end, so a failure leaves no half
    archive) or to stdout unless it is a terminal."""
    if output is None:
        if sys.stdout.isatty():
            raise UsageError("refusing to write a tar archive to a terminal; use -o FILE or redirect")
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    output = output.absolute()
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "wb") as sink:
            for chunk in chunks:
                sink.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _input(source: Path | None) -> Iterator[IO[bytes]]:
    if source is not None:
        with open(source, "rb") as data:
            yield data
        return
    if sys.stdin.isatty():
        raise UsageError("no archive on stdin; use -i FILE or redirect one")
    yield sys.stdin.buffer


def commit(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(help="The service whose container to commit.")],
    ref: Annotated[str | None, typer.Argument(metavar="[NAME[:TAG]]")] = None,
    index: IndexOpt = 1,
) -> None:
    """Make an image of a service container's changes (a new layer on top of its image)."""
    image = _stack(ctx).commit(service, ref, index=index)
    write(image.id)


def export(ctx: typer.Context, service: Annotated[str, typer.Argument()], output: OutputOpt = None,
           index: IndexOpt = 1) -> None:
    """Write a service container's filesystem (without volumes) as a tar archive."""
    _write_chunks(_stack(ctx).export(service, index=index), output)


def image_bootstrap(
    base: Annotated[str, typer.Argument(help="busybox, debian:SUITE or debian:SUITE-slim")],
    ref: Annotated[str | None, typer.Argument(help="NAME[:TAG] (default: the base's own name)")] = None,
    mirror: Annotated[str | None, typer.Option(help="Debian mirror (default: this machine's apt's)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Make a base image with no registry (debootstrap runs once per machine, then it is cached)."""
    from rich.markup import escape

    def progress(line: str) -> None:
        if not quiet:
            err().print(f"[dim]{escape(line)}[/]")

    with _images() as images:
        image = images.bootstrap(base, ref, mirror=mirror, progress=progress)
    write(f"{', '.join(image.refs)} {image.id}")


def image_save(refs: Annotated[list[str], typer.Argument(metavar="IMAGE...")],
               output: OutputOpt = None) -> None:
    """Save images to a tar archive that `docker load`, `podman load` and `stackup image load` read."""
    with _images() as images:
        _write_chunks(images.save(refs), output)


def image_load(
    source: Annotated[Path | None, typer.Option("--input", "-i", help="Read FILE instead of stdin.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Load images from a `docker save`, `podman save` or `stackup image save` archive."""
    with _images() as images, _input(source) as data:
        loaded = images.load(data)
    if not quiet:
        for image in loaded:
            names = image.refs or (image.id,)
            write("\n".join(f"Loaded image: {name}" for name in names))


def _ago(when: datetime | None) -> str:
    if when is None:
        return ""
    seconds = (datetime.now(UTC) - when.astimezone(UTC)).total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size * 2:
            return f"{int(seconds // size)} {unit} ago"
    return f"{max(int(seconds), 0)} seconds ago"


def image_history(
    ref: Annotated[str, typer.Argument(metavar="IMAGE")],
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    no_trunc: Annotated[bool, typer.Option("--no-trunc")] = False,
) -> None:
    """Show the steps that made an image, newest first."""
    with _images() as images:
        steps = images.history(ref)
    if fmt == "json":
        write(json.dumps([s.model_dump(mode="json") for s in steps], indent=2))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"):
        table.add_column(col, overflow="fold" if no_trunc else "ellipsis", no_wrap=not no_trunc)
    for s in steps:
        short = s.id if no_trunc or s.id.startswith("<") else s.id.removeprefix("sha256:")[:12]
        created_by = s.created_by if no_trunc or len(s.created_by) <= 45 else s.created_by[:44] + "…"
        table.add_row(short, _ago(s.created), created_by, f"{s.size / 1e6:.1f}MB", s.comment)
    out().print(table)


def register(app: typer.Typer) -> None:
    """`commit` and `export` at the top, the rest under `image` (made by `engine_cmd`)."""
    from stackup.cli.engine_cmd import image_app

    app.command("commit")(commit)
    app.command("export")(export)
    image_app.command("save")(image_save)
    image_app.command("load")(image_load)
    image_app.command("history")(image_history)
    image_app.command("bootstrap")(image_bootstrap)
