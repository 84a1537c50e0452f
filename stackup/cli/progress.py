"""Progress while `up`/`down` run: `--progress auto|tty|plain|json|quiet`.

`tty` keeps one live line per resource (state and elapsed time, rich); `plain` prints one line per
state change (logs, CI); `json` prints the executor's events as JSON lines for tools; `quiet`
prints nothing. All hooks arrive from worker threads, so each reporter locks.
"""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from typing import TYPE_CHECKING

from stackup.planner.reporter import Event, EventLog, Reporter

if TYPE_CHECKING:
    from rich.live import Live
    from rich.table import Table

    from stackup.errors import OperationFailed, UpstreamFailed
    from stackup.planner.plan import Operation
    from stackup.spec.models import DependsCondition


class ProgressMode(StrEnum):
    AUTO = "auto"
    TTY = "tty"
    PLAIN = "plain"
    JSON = "json"
    QUIET = "quiet"


_DONE_WORDS = {
    "create": "Created",
    "recreate": "Recreated",
    "start": "Started",
    "stop": "Stopped",
    "remove": "Removed",
    "pull": "Pulled",
    "build": "Built",
    "restart": "Restarted",
}


def _label(op: Operation) -> str:
    return f"{op.resource} {op.name}"


def _quiet(op: Operation) -> bool:
    """Operations that change nothing are not worth a line (a no-op `up` prints a summary only)."""
    return str(op.kind) == "nothing"


def _trivial(condition: DependsCondition) -> bool:
    """Waiting for "started" is immediate: only health and completion waits are shown."""
    return str(condition) == "service_started"


class PlainReporter(EventLog):
    """One line per state change on stderr, with elapsed time since the operation started."""

    def __init__(self) -> None:
        super().__init__()
        self._t0: dict[str, float] = {}

    def _line(self, text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def op_started(self, op: Operation) -> None:
        super().op_started(op)
        self._t0[op.id] = time.monotonic()
        if not _quiet(op):
            self._line(f" {_label(op):40} {op.kind}...")

    def op_done(self, op: Operation) -> None:
        super().op_done(op)
        if _quiet(op):
            return
        elapsed = time.monotonic() - self._t0.get(op.id, time.monotonic())
        word = _DONE_WORDS.get(str(op.kind), "Done")
        self._line(f" \u2714 {_label(op):38} {word} {elapsed:.1f}s")

    def op_failed(self, op: Operation, error: OperationFailed) -> None:
        super().op_failed(op, error)
        self._line(f" \u2718 {_label(op):38} {op.kind} failed: {error.cause}")

    def op_skipped(self, op: Operation, error: UpstreamFailed) -> None:
        super().op_skipped(op, error)
        self._line(f" - {_label(op):38} not started: {error}")

    def op_progress(self, op: Operation, line: str) -> None:
        super().op_progress(op, line)
        self._line(f"   {_label(op):38} {line}")

    def build_progress(self, service: str, line: str) -> None:
        super().build_progress(service, line)
        self._line(f"   {'build ' + service:38} {line}")

    def waiting(self, service: str, condition: DependsCondition) -> None:
        super().waiting(service, condition)
        if not _trivial(condition):
            self._line(f"   {'service ' + service:38} waiting for {condition}")

    def ready(self, service: str, condition: DependsCondition) -> None:
        super().ready(service, condition)
        if not _trivial(condition):
            self._line(f" \u2714 {'service ' + service:38} {str(condition).removeprefix('service_')}")

    def warning(self, message: str) -> None:
        super().warning(message)
        self._line(f" ! {message}")


class JsonReporter(EventLog):
    """The executor's events as JSON lines on stdout (one object per line)."""

    def __init__(self) -> None:
        super().__init__(sink=self._emit)

    @staticmethod
    def _emit(event: Event) -> None:
        sys.stdout.write(event.to_json_line() + "\n")
        sys.stdout.flush()


class TtyReporter(EventLog):
    """A live block with one line per resource: spinner or mark, state, elapsed seconds."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, tuple[str, str, float, float | None]] = {}
        self._live: Live | None = None

    def __enter__(self) -> TtyReporter:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(console=Console(stderr=True), refresh_per_second=10, transient=False,
                          get_renderable=self._render)
        self._live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def _set(self, key: str, mark: str, text: str, *, finished: bool) -> None:
        with self._lock:
            started = self._rows[key][2] if key in self._rows else time.monotonic()
            self._rows[key] = (mark, text, started, time.monotonic() if finished else None)

    def _render(self) -> Table:
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        with self._lock:
            rows = list(self._rows.items())
        for key, (mark, text, started, ended) in rows:
            elapsed = (ended or now) - started
            table.add_row(mark, key, text, f"[dim]{elapsed:.1f}s[/]")
        return table

    def op_started(self, op: Operation) -> None:
        super().op_started(op)
        if not _quiet(op):
            self._set(_label(op), "[yellow]\u25cc[/]", f"{op.kind}...", finished=False)

    def op_done(self, op: Operation) -> None:
        super().op_done(op)
        if _quiet(op):
            return
        self._set(_label(op), "[green]\u2714[/]", _DONE_WORDS.get(str(op.kind), "Done"), finished=True)

    def op_failed(self, op: Operation, error: OperationFailed) -> None:
        super().op_failed(op, error)
        from rich.markup import escape

        self._set(_label(op), "[red]\u2718[/]", f"[red]{escape(error.cause)}[/]", finished=True)

    def op_skipped(self, op: Operation, error: UpstreamFailed) -> None:
        super().op_skipped(op, error)
        self._set(_label(op), "[dim]-[/]", "[dim]not started[/]", finished=True)

    def waiting(self, service: str, condition: DependsCondition) -> None:
        super().waiting(service, condition)
        if _trivial(condition):
            return
        self._set(f"service {service}", "[yellow]\u25cc[/]", f"waiting: {condition}", finished=False)

    def ready(self, service: str, condition: DependsCondition) -> None:
        super().ready(service, condition)
        if _trivial(condition):
            return
        text = str(condition).removeprefix("service_").replace("_", " ")
        self._set(f"service {service}", "[green]\u2714[/]", text, finished=True)


def make_reporter(mode: str) -> EventLog:
    """The reporter for `--progress`; `auto` picks `tty` on a terminal, else `plain`."""
    chosen = ProgressMode(mode)
    if chosen is ProgressMode.AUTO:
        chosen = ProgressMode.TTY if sys.stderr.isatty() else ProgressMode.PLAIN
    match chosen:
        case ProgressMode.TTY:
            return TtyReporter()
        case ProgressMode.PLAIN:
            return PlainReporter()
        case ProgressMode.JSON:
            return JsonReporter()
        case _:
            return EventLog()


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def live(reporter: Reporter) -> TtyReporter | _NoLive:
    """Context manager that shows the live block for a TTY reporter and does nothing otherwise."""
    return reporter if isinstance(reporter, TtyReporter) else _NoLive()

