"""Attached `up`: every container's output with a coloured `name |` prefix until the session ends.

The decisions (which exit ends the session, its code) are `stackup.api.session`'s; this module
prints, and on Ctrl-C stops the stack gracefully (a second Ctrl-C kills).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from stackup.errors import RuntimeFailure

if TYPE_CHECKING:
    from stackup.api.stack import Stack
    from stackup.runtime.base import ContainerInfo, LogEntry

# One colour per container prefix, shared by attached `up` and `logs`.
COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "bright_cyan", "bright_yellow", "bright_green")


def prefixes(containers: list[ContainerInfo]) -> dict[str, str]:
    width = max((len(c.name) for c in containers), default=0)
    return {c.id: f"[{COLOURS[i % len(COLOURS)]}]{c.name:<{width}} |[/] " for i, c in enumerate(containers)}


def attach(
    stack: Stack,
    services: tuple[str, ...],
    *,
    abort_on_exit: bool,
    abort_on_failure: bool,
    exit_code_from: str | None,
    stop_timeout: float | None,
) -> int:
    """Follow logs until every container exits, an abort condition fires, or Ctrl-C."""
    from rich.markup import escape

    from stackup.api import session
    from stackup.cli.output import out

    containers = stack.ps(services)
    marks = prefixes(containers)
    lock = threading.Lock()

    def show(info: ContainerInfo, entry: LogEntry) -> None:
        with lock:
            out().print(f"{marks[info.id]}{escape(entry.text)}", highlight=False)

    session.follow(stack.backend, containers, show)
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        end = session.watch(
            stack.backend, containers, stop=interrupted, abort_on_exit=abort_on_exit,
            abort_on_failure=abort_on_failure, exit_code_from=exit_code_from,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    if end.container and not exit_code_from:
        sys.stderr.write(f"{end.container} exited with code {end.code}\n")
    sys.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
    _stop_all(stack, containers, stop_timeout)
    time.sleep(session.POLL_S)  # let the log threads print the last lines
    return end.code


def _stop_all(stack: Stack, containers: list[ContainerInfo], timeout: float | None) -> None:
    """Stop in parallel; a second Ctrl-C kills instead of waiting out grace periods."""
    backend = stack.backend

    def force(*_: object) -> None:
        for c in containers:
            with contextlib.suppress(RuntimeFailure):
                backend.kill_container(c.id, "SIGKILL")

    previous = signal.signal(signal.SIGINT, force)
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(containers))) as pool:
            list(pool.map(lambda c: backend.stop_container(c.id, timeout), containers))
    finally:
        signal.signal(signal.SIGINT, previous)


def attach_watching(stack: Stack, services: tuple[str, ...], *, stop_timeout: float | None) -> int:
    """`up --watch`: every container's output, interleaved with one line per watch action, until
    Ctrl-C; then the stack is stopped as an attached `up` stops it."""
    from rich.markup import escape

    from stackup.api import session
    from stackup.cli.output import out
    from stackup.cli.watch_cmd import run_watch

    containers = stack.ps(services)
    marks = prefixes(containers)
    lock = threading.Lock()

    def show(info: ContainerInfo, entry: LogEntry) -> None:
        with lock:
            out().print(f"{marks.get(info.id, info.name + ' | ')}{escape(entry.text)}", highlight=False)

    session.follow(stack.backend, containers, show)
    run_watch(stack, services, up=False, prune=False, quiet=False, lock=lock)
    sys.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
    _stop_all(stack, stack.ps(services), stop_timeout)
    return session.INTERRUPTED
