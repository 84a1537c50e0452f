"""Progress reporting for `execute`: hooks that default to doing nothing, and an event value.

The executor never prints (nothing under `stackup/planner` does); it calls these hooks and the CLI
decides what a user sees: a live tree, plain lines, or JSON lines (`Event.to_json_line`). Hooks are
called from worker threads, so a reporter that keeps state must lock, as `EventLog` does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from stackup.errors import OperationFailed, UpstreamFailed
    from stackup.planner.plan import Operation
    from stackup.spec.models import DependsCondition


class EventKind(StrEnum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"
    READY = "ready"
    WARNING = "warning"
    PROGRESS = "progress"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened; `resource` is an operation id (`service:web-1`) or a service name."""

    kind: EventKind
    resource: str
    operation: str | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": str(self.kind), "resource": self.resource}
        if self.operation is not None:
            out["operation"] = self.operation
        if self.message:
            out["message"] = self.message
        return out

    def to_json_line(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


class Reporter(Protocol):
    """What `execute` tells its audience. Every hook is a no-op: subclass and override what you show."""

    def op_started(self, op: Operation) -> None:
        return None

    def op_done(self, op: Operation) -> None:
        return None

    def op_failed(self, op: Operation, error: OperationFailed) -> None:
        return None

    def op_skipped(self, op: Operation, error: UpstreamFailed) -> None:
        return None

    def op_progress(self, op: Operation, line: str) -> None:
        """A line of a running operation's progress (a build's steps and their output)."""
        return None

    def build_progress(self, service: str, line: str) -> None:
        """A line of progress of a build `up --build` or `stackup build` runs for `service`."""
        return None

    def waiting(self, service: str, condition: DependsCondition) -> None:
        """A dependent is about to wait for `service` to reach `condition` (health, exit)."""
        return None

    def ready(self, service: str, condition: DependsCondition) -> None:
        return None

    def warning(self, message: str) -> None:
        """Something the user should know that did not stop the run (an optional dependency failed)."""
        return None


class NullReporter(Reporter):
    """Reports nothing; the default for callers that only want the outcome."""


class EventLog(Reporter):
    """Records every hook as an `Event` (thread-safe) and passes it to `sink`, e.g. a JSON-lines writer."""

    def __init__(self, sink: Callable[[Event], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._sink = sink
        self.events: list[Event] = []

    def _add(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
            if self._sink is not None:
                self._sink(event)

    def op_started(self, op: Operation) -> None:
        self._add(Event(EventKind.STARTED, op.id, str(op.kind)))

    def op_done(self, op: Operation) -> None:
        self._add(Event(EventKind.DONE, op.id, str(op.kind)))

    def op_failed(self, op: Operation, error: OperationFailed) -> None:
        self._add(Event(EventKind.FAILED, op.id, str(op.kind), str(error)))

    def op_skipped(self, op: Operation, error: UpstreamFailed) -> None:
        self._add(Event(EventKind.SKIPPED, op.id, str(op.kind), str(error)))

    def op_progress(self, op: Operation, line: str) -> None:
        self._add(Event(EventKind.PROGRESS, op.id, str(op.kind), line))

    def build_progress(self, service: str, line: str) -> None:
        self._add(Event(EventKind.PROGRESS, service, "build", line))

    def waiting(self, service: str, condition: DependsCondition) -> None:
        self._add(Event(EventKind.WAITING, service, None, str(condition)))

    def ready(self, service: str, condition: DependsCondition) -> None:
        self._add(Event(EventKind.READY, service, None, str(condition)))

    def warning(self, message: str) -> None:
        self._add(Event(EventKind.WARNING, "", None, message))

    def of_kind(self, kind: EventKind) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.kind is kind]
