"""File events -> one batch of work per service.

watchfiles hands over a set of (change, path) once the file system has been quiet for one step
(`STEP_MS`); the set is unordered, so the kind of event is not trusted: at sync time a path that
exists is written, one that does not is deleted (the approach Tilt and Compose take). An
editor's write-to-temp-then-rename therefore arrives as one write of the real file, and the
temporary file, gone by then, is at most a delete of something the container never had (the
engine reports only what it really deleted). Each path goes to the first rule of each service
that counts it (`develop.watch` order), and a service's paths accumulate in one `Pending` until
its worker takes them: a burst (a `git checkout` of a thousand files) is one action, and changes
made while a slow action (a rebuild) runs become the next one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import Change

from stackup.dev.rules import RuleMatcher
from stackup.spec.models import WatchAction

STEP_MS = 5
"""The quiet period that ends a batch: short enough for a save to land in the container well
under 50 ms, long enough that a burst of writes (a checkout, a formatter) stays one batch."""
MAX_BATCH_MS = 2000
"""A batch is cut after this long even if events keep coming (watchfiles' `debounce`)."""

SYNCING = frozenset({WatchAction.SYNC, WatchAction.SYNC_RESTART, WatchAction.SYNC_EXEC})


@dataclass
class Pending:
    """One service's accumulated changes: paths by the rule that counted them."""

    service: str
    paths: dict[Path, RuleMatcher] = field(default_factory=dict)
    added: set[Path] = field(default_factory=set)
    first_event: float = 0.0

    def merge(self, other: Pending) -> None:
        self.first_event = min(self.first_event, other.first_event) if self.paths else other.first_event
        self.paths.update(other.paths)
        self.added |= other.added

    @property
    def actions(self) -> set[WatchAction]:
        return {m.action for m in self.paths.values()}

    @property
    def rebuild(self) -> bool:
        return WatchAction.REBUILD in self.actions

    @property
    def restart(self) -> bool:
        return bool(self.actions & {WatchAction.RESTART, WatchAction.SYNC_RESTART})

    def syncs(self) -> dict[Path, RuleMatcher]:
        return {p: m for p, m in self.paths.items() if m.action in SYNCING}

    def exec_rules(self) -> list[RuleMatcher]:
        """The `sync+exec` rules hit, each once, in rule order."""
        rules = {m.index: m for m in self.paths.values() if m.action is WatchAction.SYNC_EXEC}
        return [rules[i] for i in sorted(rules)]


class Batcher:
    """Routes file events to the services whose rules count them."""

    def __init__(self, matchers: Sequence[RuleMatcher]) -> None:
        self.by_service: dict[str, list[RuleMatcher]] = {}
        for matcher in matchers:
            self.by_service.setdefault(matcher.service, []).append(matcher)

    @property
    def roots(self) -> set[Path]:
        return {m.root for ms in self.by_service.values() for m in ms}

    def route(self, changes: Iterable[tuple[Change, str]], at: float) -> dict[str, Pending]:
        out: dict[str, Pending] = {}
        for change, raw in changes:
            path = Path(raw)
            for service, matchers in self.by_service.items():
                matcher = next((m for m in matchers if m.covers(path) and m.decide(path).counts), None)
                if matcher is None:
                    continue
                pending = out.setdefault(service, Pending(service, first_event=at))
                pending.paths[path] = matcher
                if change is Change.added:
                    pending.added.add(path)
        return out
