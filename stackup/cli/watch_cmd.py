"""`stackup watch` and the printing half of `up --watch`: flags in, `Stack.watch` called, one
line per action out (`web: synced 3 files (14 ms)`)."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli.context import GlobalOptions
from stackup.cli.output import warn, write

if TYPE_CHECKING:
    from stackup.api.stack import Stack
    from stackup.dev.report import WatchEvent


def show_event(event: WatchEvent, *, lock: threading.Lock | None = None) -> None:
    """One line per action, errors in red with their detail (located spec error, output) under it."""
    from rich.markup import escape

    from stackup.cli.output import err, out
    from stackup.dev.report import EventKind

    text = escape(str(event))
    detail = [f"    {escape(line)}" for line in event.detail.splitlines()]
    with lock or threading.Lock():
        if event.kind is EventKind.ERROR:
            err().print(f"[bold red]watch:[/] {text}")
            for line in detail:
                err().print(line)
            return
        out().print(f"[bold]watch:[/] {text}")
        for line in detail:
            out().print(line)


def run_watch(
    stack: Stack, services: tuple[str, ...], *, up: bool, prune: bool, quiet: bool,
    lock: threading.Lock | None = None, stop: threading.Event | None = None,
) -> None:
    """Watch until Ctrl-C (or `stop`)."""
    from stackup.cli.progress import make_reporter
    from stackup.dev.report import EventKind

    stopper = stop or threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stopper.set())

    def sink(event: WatchEvent) -> None:
        if quiet and event.kind is EventKind.INFO:
            return
        show_event(event, lock=lock)

    reporter = make_reporter("quiet" if quiet else "plain")  # plain lines: they interleave with ours
    try:
        stack.watch(services, up=up, prune=prune, on_event=sink, stop=stopper, reporter=reporter)
    finally:
        signal.signal(signal.SIGINT, previous)


def watch(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")] = None,
    no_up: Annotated[bool, typer.Option("--no-up", help="Don't bring the services up first.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Remove images a rebuild left dangling.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Hide build output.")] = False,
    explain: Annotated[
        str | None, typer.Option("--explain", metavar="PATH", help="Say which rule and pattern decide PATH.")
    ] = None,
) -> None:
    """Sync, restart or rebuild services as their `develop.watch` paths change."""
    opts: GlobalOptions = ctx.obj
    names = tuple(services or ())
    stack = opts.stack(names)
    for message in stack.warnings:
        warn(message)
    if explain is not None:
        for line in stack.explain_watch(explain, names):
            write(line)
        return
    run_watch(stack, names, up=not no_up, prune=prune, quiet=quiet)


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
