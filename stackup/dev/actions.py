"""What a batch does to a service: sync, then restart or exec; or rebuild.

Each service has a worker thread: batches for a service queue up in one `Pending` while it works,
so a slow action (a rebuild, a restart) is followed by one action for everything that changed
meanwhile, and a slow service never delays another's sync. Every action becomes one
`WatchEvent` line with its latency, measured from the moment the batch was handed over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from stackup.dev.batching import Pending
from stackup.dev.report import EventKind, EventSink, WatchEvent, plural
from stackup.dev.swap import CandidateFailed
from stackup.dev.sync import Syncer, plan_batch
from stackup.errors import StackupError
from stackup.runtime import labels as lbl
from stackup.runtime.base import Backend, ContainerInfo, ContainerState, ExecSpec

Rebuild = Callable[[str], str]
"""Rebuild a service's image and recreate it; returns what to report (`rebuilt (1.2 s, ...)`).
Raises a `StackupError` (the old container keeps serving)."""


@dataclass(frozen=True)
class ServiceContext:
    """What a worker needs from the session (the project name, the backend, how to rebuild)."""

    project: str
    backend: Backend
    syncer: Syncer
    sink: EventSink
    rebuild: Rebuild


def containers_of(backend: Backend, project: str, service: str) -> list[ContainerInfo]:
    """The service's replicas (any state, one-off containers left out)."""
    return [
        c for c in backend.list_containers(project)
        if c.labels.get(lbl.SERVICE) == service and c.labels.get(lbl.ONEOFF) != lbl.TRUE
    ]


def perform(context: ServiceContext, pending: Pending) -> WatchEvent | None:
    """Do what `pending` asks of its service; the event to report (None: nothing happened)."""
    started = pending.first_event
    service = pending.service
    if pending.rebuild:
        return WatchEvent(EventKind.REBUILT, context.rebuild(service), service, time.monotonic() - started)
    containers = containers_of(context.backend, context.project, service)
    if not containers:
        return WatchEvent(EventKind.ERROR, "no container to apply changes to (not up?)", service)
    parts: list[str] = []
    written, deleted = context.syncer.apply(containers, plan_batch(pending.syncs(), pending.added))
    if written or deleted:
        parts.append("synced " + plural(written, "file") + (f", deleted {deleted}" if deleted else ""))
    if pending.restart:
        for info in containers:
            context.backend.restart_container(info.id)
        parts.append("restarted")
    for matcher in pending.exec_rules():
        hook = matcher.rule.exec
        assert hook is not None and hook.command  # checked when the rules were made
        spec = ExecSpec(tuple(hook.command), user=hook.user, working_dir=hook.working_dir,
                        environment={k: v or "" for k, v in hook.environment.items()},
                        privileged=hook.privileged)  # fmt: skip
        for info in containers:
            if info.state is not ContainerState.RUNNING:
                continue
            result = context.backend.exec(info.id, spec)
            if result.exit_code != 0:
                output = (result.stderr or result.stdout).decode(errors="replace").strip()
                raise _ExecFailed(f"`{' '.join(hook.command)}` exited with {result.exit_code}", output)
        parts.append(f"ran `{' '.join(hook.command)}`")
    if not parts:
        return None
    kind = EventKind.SYNCED
    if pending.restart or pending.exec_rules():
        kind = EventKind.RESTARTED if pending.restart else EventKind.EXECUTED
    return WatchEvent(kind, ", ".join(parts), service, time.monotonic() - started)


class _ExecFailed(StackupError):
    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


class ServiceWorker:
    """One service's queue and thread."""

    def __init__(self, service: str, context: ServiceContext) -> None:
        self.service = service
        self.context = context
        self._pending: Pending | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"watch-{service}", daemon=True)
        self._thread.start()

    def submit(self, pending: Pending) -> None:
        with self._cond:
            if self._pending is None:
                self._pending = pending
            else:
                self._pending.merge(pending)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=30)

    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self._busy

    _busy = False

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                pending, self._pending = self._pending, None
                self._busy = True
            try:
                assert pending is not None
                event = perform(self.context, pending)
            except (_ExecFailed, CandidateFailed) as exc:
                event = WatchEvent(EventKind.ERROR, str(exc), self.service, detail=exc.output)
            except (StackupError, OSError) as exc:
                event = WatchEvent(EventKind.ERROR, str(exc), self.service)
            finally:
                with self._cond:
                    self._busy = False
            if event is not None:
                self.context.sink(event)
