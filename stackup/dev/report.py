"""What a watch session reports: one `WatchEvent` per action, with its latency.

The session never prints; the CLI renders `str(event)` (`web: synced 3 files (14 ms)`) and
interleaves it with the services' logs in `up --watch`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    WATCHING = "watching"
    SYNCED = "synced"
    RESTARTED = "restarted"
    EXECUTED = "executed"
    REBUILT = "rebuilt"
    PLANNED = "planned"
    APPLIED = "applied"
    ERROR = "error"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One thing the session did (or failed to do) for `service` (None: the stack as a whole)."""

    kind: EventKind
    message: str
    service: str | None = None
    elapsed_s: float | None = None
    detail: str = ""
    """More lines (a located spec error, a plan, a failed command's output)."""

    def __str__(self) -> str:
        head = f"{self.service}: " if self.service else ""
        tail = f" ({format_duration(self.elapsed_s)})" if self.elapsed_s is not None else ""
        return f"{head}{self.message}{tail}"


def format_duration(seconds: float) -> str:
    """`14 ms` under a second, `1.2 s` above."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


EventSink = Callable[[WatchEvent], None]
