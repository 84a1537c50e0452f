"""An attached `up`: follow every container's output and decide when the session ends.

`--abort-on-container-exit`, `--abort-on-container-failure` and `--exit-code-from` make `up` the
test-runner pattern: the first exit (or the named service's exit) ends the session and its code
becomes the caller's. Output goes to a callback; stopping is the caller's choice (`Stack.stop`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from stackup.errors import RuntimeFailure
from stackup.runtime import labels as lbl
from stackup.runtime.base import Backend, ContainerInfo, ContainerState, LogEntry

POLL_S = 0.1
INTERRUPTED = 130
"""The exit code of a session ended by Ctrl-C, as a shell reports SIGINT."""

LineSink = Callable[[ContainerInfo, LogEntry], None]


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """Why the session ended: `container` exited with `code` (None: all exited or interrupted)."""

    code: int
    container: str | None = None


def follow(backend: Backend, containers: list[ContainerInfo], sink: LineSink) -> list[threading.Thread]:
    """One daemon thread per container streaming its log lines into `sink` until it exits."""

    def pump(info: ContainerInfo) -> None:
        try:
            for entry in backend.logs(info.id, follow=True):
                sink(info, entry)
        except RuntimeFailure:
            return  # the container went away while we followed it

    threads = [threading.Thread(target=pump, args=(c,), daemon=True) for c in containers]
    for thread in threads:
        thread.start()
    return threads


def watch(
    backend: Backend,
    containers: list[ContainerInfo],
    *,
    stop: threading.Event,
    abort_on_exit: bool = False,
    abort_on_failure: bool = False,
    exit_code_from: str | None = None,
) -> SessionEnd:
    """Poll until an end condition holds or `stop` is set (Ctrl-C: code 130)."""
    while not stop.wait(POLL_S):
        states = [backend.inspect_container(c.id) for c in containers]
        exited = [s for s in states if s.state in (ContainerState.EXITED, ContainerState.DEAD)]
        if exit_code_from:
            mine = [s for s in exited if s.labels.get(lbl.SERVICE) == exit_code_from]
            if mine:
                return SessionEnd(mine[0].exit_code or 0, mine[0].name)
            continue
        for s in exited:
            if abort_on_exit or (abort_on_failure and s.exit_code):
                return SessionEnd(s.exit_code or 0, s.name)
        if len(exited) == len(states):
            return SessionEnd(0)
    return SessionEnd(INTERRUPTED)
