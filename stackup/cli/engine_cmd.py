"""`stackup engine start|stop|status` and `stackup image ...`: the engine and its image store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli.output import out, write

if TYPE_CHECKING:
    from stackup.runtime.native.client import EngineClient

engine_app = typer.Typer(help="Manage the native engine (stackupd).", no_args_is_help=True)
image_app = typer.Typer(help="Manage images in the engine's store.", no_args_is_help=True)


@engine_app.command("start")
def engine_start() -> None:
    """Start the engine if it is not running (commands that need it start it anyway)."""
    from stackup.runtime.native.launcher import ensure_engine

    info = ensure_engine().info()
    write(f"engine running (pid {info.pid}, socket {info.socket})")


@engine_app.command("stop")
def engine_stop() -> None:
    """Stop the engine; containers keep running under their conmon and are re-adopted later."""
    from stackup.runtime.native.launcher import stop_engine

    write("engine stopped" if stop_engine() else "engine was not running")


@engine_app.command("status")
def engine_status_cmd(fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text") -> None:
    """Whether the engine answers, its pid, memory and counts. Exit 1 when it is not running."""
    from stackup.runtime.native.launcher import engine_status

    status = engine_status()
    if fmt == "json":
        write(status.model_dump_json(indent=2))
    elif status.info is not None:
        i = status.info
        write(
            f"running  pid {i.pid}  rss {i.rss_bytes / 2**20:.1f} MiB  containers {i.containers} "
            f"({i.running} running)  images {i.images}  volumes {i.volumes}\nsocket {i.socket}"
            + (f"\nruntime {i.oci_runtime}" if i.oci_runtime else "")
        )
    else:
        write(f"not running (socket {status.socket})")
    raise typer.Exit(0 if status.running else 1)


def _client() -> EngineClient:
    from stackup.runtime.native.launcher import ensure_engine

    return ensure_engine()


@image_app.command("import")
def image_import(
    source: Annotated[Path, typer.Argument(help="Rootfs directory or tar, docker-save tar, OCI layout.")],
    ref: Annotated[str | None, typer.Argument(help="NAME[:TAG] (required for a rootfs).")] = None,
) -> None:
    """Import an image from a root filesystem or an image archive."""
    for image in _client().import_image(source, ref):
        write(f"{', '.join(image.refs) or '<none>'} {image.id}")


@image_app.command("ls")
def image_ls(fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table") -> None:
    """List images."""
    images = _client().list_images()
    if fmt == "json":
        write(json.dumps([i.model_dump(mode="json") for i in images], indent=2))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("REPOSITORY:TAG", "IMAGE ID", "SIZE"):
        table.add_column(col)
    for i in images:
        short_id = i.id.removeprefix("sha256:")[:12]
        table.add_row(", ".join(i.refs) or "<none>", short_id, f"{i.size / 1e6:.1f}MB")
    out().print(table)


@image_app.command("rm")
def image_rm(
    refs: Annotated[list[str], typer.Argument(metavar="IMAGE...")],
    force: Annotated[bool, typer.Option("--force", "-f")] = False,
) -> None:
    """Remove images (never one a container uses)."""
    client = _client()
    for ref in refs:
        client.remove_image(ref, force=force)
        write(f"Untagged/removed {ref}")


@image_app.command("prune")
def image_prune() -> None:
    """Remove images no tag and no container refers to."""
    result = _client().prune_images()
    for image_id in result.removed:
        write(f"deleted {image_id}")
    write(f"reclaimed {result.reclaimed_bytes / 1e6:.1f}MB")


def register(app: typer.Typer) -> None:
    app.add_typer(engine_app, name="engine")
    app.add_typer(image_app, name="image")
    app.command("images", help="List images (same as `image ls`).")(image_ls)
