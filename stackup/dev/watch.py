"""A watch session: file events -> batches -> per-service workers; stack-file changes -> re-plan.

Files are watched with watchfiles' Rust notifier (inotify, never polling): the rule paths
without their ignored directories (`watchset.py`), the directories of the stack's own inputs
(stack files, includes, `.env`) flat.
The notifier hands over a set of changes once the tree has been quiet for `STEP_MS`; routing
it is cheap (pattern tests), so the main loop never waits on an action: each service's
worker does that (`actions.py`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change
from watchfiles._rust_notify import RustNotify

from stackup.dev.actions import Rebuild, ServiceContext, ServiceWorker
from stackup.dev.batching import MAX_BATCH_MS, STEP_MS, Batcher, Pending
from stackup.dev.report import EventKind, EventSink, WatchEvent, plural
from stackup.dev.rules import RuleMatcher
from stackup.dev.stackfile import StackInputs
from stackup.dev.sync import Batch, Syncer, plan_batch
from stackup.dev.watchset import WatchSet, outermost, stale
from stackup.dev.watchset import plan as plan_watches
from stackup.runtime.base import Backend

Changes = set[tuple[Change, str]]


class Notifier:
    """One watchfiles notifier on a thread, feeding (time handed over, changes) into `out`."""

    def __init__(self, paths: list[Path], recursive: bool, out: queue.Queue[tuple[float, Changes]]) -> None:
        self.stop = threading.Event()
        self._rust = RustNotify([str(p) for p in paths], False, False, 0, recursive, True)
        self._out = out
        self._thread = threading.Thread(target=self._run, name="watch-notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            result = self._rust.watch(MAX_BATCH_MS, STEP_MS, 500, self.stop)
            if isinstance(result, set):
                self._out.put((time.monotonic(), {(Change(c), p) for c, p in result}))
            elif result == "stop":
                break

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)
        self._rust.close()


def _close_all(notifiers: list[Notifier]) -> None:
    for notifier in notifiers:
        notifier.close()


@dataclass
class Hooks:
    """What the session asks of the `Stack` it serves (so it needs no API import)."""

    matchers: Callable[[], list[RuleMatcher]]
    inputs: Callable[[], StackInputs]
    on_stack_change: Callable[[list[Path]], WatchEvent]
    rebuild: Rebuild


class WatchSession:
    def __init__(
        self, project: str, backend: Backend, hooks: Hooks, sink: EventSink, stop: threading.Event
    ) -> None:
        self.project = project
        self.backend = backend
        self.hooks = hooks
        self.sink = sink
        self.stop = stop
        self.syncer = Syncer(backend)
        self.context = ServiceContext(project, backend, self.syncer, sink, hooks.rebuild)
        self.workers: dict[str, ServiceWorker] = {}
        self.events: queue.Queue[tuple[float, Changes]] = queue.Queue()
        self.notifiers: list[Notifier] = []
        self.matchers: list[RuleMatcher] = []
        self.batcher = Batcher([])
        self.inputs = StackInputs(frozenset())
        self.watched = WatchSet()

    # -- set-up -----------------------------------------------------------------------------

    def _arm(self, *, report: bool = True) -> None:
        """(Re)start the notifiers for the current rules and stack inputs; the new ones are armed
        before the old ones close, so no change falls between them."""
        old, self.notifiers = self.notifiers, []
        self.matchers = self.hooks.matchers()
        self.batcher = Batcher(self.matchers)
        self.inputs = self.hooks.inputs()
        roots = {r for r in self.batcher.roots if r.exists()}
        for missing in sorted(self.batcher.roots - roots) if report else ():
            self.sink(WatchEvent(EventKind.ERROR, f"{missing} does not exist: not watched"))
        self.watched = plan_watches(outermost(roots), self.matchers)
        if self.watched.recursive:
            self.notifiers.append(Notifier(list(self.watched.recursive), True, self.events))
        inputs = {d for d in self.inputs.directories
                  if not any(d.is_relative_to(r) for r in self.watched.recursive)}  # fmt: skip
        flat = sorted(set(self.watched.flat) | inputs)
        if flat:
            self.notifiers.append(Notifier(flat, False, self.events))
        if old:  # closing waits out a notifier's poll (up to half a second): not on the loop
            threading.Thread(target=_close_all, args=(old,), name="watch-close", daemon=True).start()

    def initial_sync(self) -> None:
        """`initial_sync: true` rules: everything the rule counts under its path, once."""
        for service, matchers in self.batcher.by_service.items():
            wanted = [m for m in matchers if m.rule.initial_sync and m.root.exists()]
            if not wanted:
                continue
            started = time.monotonic()
            pending = Pending(service, first_event=started)
            for matcher in wanted:
                pending.paths.setdefault(matcher.root, matcher)
                pending.added.add(matcher.root)
            batch = plan_batch(pending.syncs(), pending.added)
            from stackup.dev.actions import containers_of

            written, _ = self.syncer.apply(containers_of(self.backend, self.project, service),
                                           Batch(writes=batch.writes))  # fmt: skip
            message = f"initial sync: {plural(written, 'file')}"
            self.sink(WatchEvent(EventKind.SYNCED, message, service, time.monotonic() - started))

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Watch until `stop` is set."""
        self._arm()
        try:
            self.initial_sync()
            services = ", ".join(sorted(self.batcher.by_service)) or "no service"
            self.sink(WatchEvent(EventKind.WATCHING, f"watching {services} (stack files too)"))
            while not self.stop.is_set():
                try:
                    at, changes = self.events.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.handle(at, changes)
        finally:
            for notifier in self.notifiers:
                notifier.close()
            for worker in self.workers.values():
                worker.close()

    def handle(self, at: float, changes: Changes) -> None:
        if stale(self.watched, self.matchers, changes):
            self._arm(report=False)  # before routing: an added directory is walked after this
        touched = self.inputs.touched(p for _, p in changes)
        for service, pending in self.batcher.route(changes, at).items():
            worker = self.workers.get(service)
            if worker is None:
                worker = self.workers[service] = ServiceWorker(service, self.context)
            worker.submit(pending)
        if touched:
            started = time.monotonic()
            event = self.hooks.on_stack_change(touched)
            self.sink(WatchEvent(event.kind, event.message, event.service, time.monotonic() - started,
                                 event.detail))  # fmt: skip
            if event.kind is not EventKind.ERROR:
                self._arm()  # rules, paths and inputs may have changed with the file
