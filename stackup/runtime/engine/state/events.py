"""The engine's event stream: durable in SQLite, live to every `/events` subscriber.

Events are produced on worker threads (request handlers, the exit monitor) and consumed on the
event loop (streaming responses), so publishing hands each event to each subscriber's loop with
`call_soon_threadsafe`. Every event is first appended to the state database: a subscriber that
asks for `since=<id>` replays what it missed from there, then continues live without a gap or a
duplicate (live events up to the last replayed id are skipped).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.wire.records import Event, EventType

SUBSCRIBER_BACKLOG = 1000
"""A subscriber that falls this far behind is dropped rather than letting the engine grow memory."""


@dataclass(eq=False)
class Subscription:
    """One live listener: a queue owned by an event loop, fed from any thread."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG))
    accept: Callable[[Event], bool] = lambda _event: True

    def offer(self, event: Event) -> None:
        """Called on the subscriber's loop; a full queue ends the stream (a `None` sentinel)."""
        if not self.accept(event):
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class EventBus:
    """Append an event to the log and fan it out to live subscribers."""

    def __init__(self, state: StateStore) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()

    def publish(
        self, type_: EventType, action: str, actor: str, attributes: Mapping[str, str] | None = None
    ) -> Event:
        event = self._state.append_event(type_, action, actor, attributes)
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, event)
            except RuntimeError:  # the subscriber's loop is closed: it is going away anyway
                self._discard(sub)
        return event

    def _discard(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    @asynccontextmanager
    async def subscribe(
        self, accept: Callable[[Event], bool] = lambda _event: True
    ) -> AsyncIterator[Subscription]:
        """A live subscription for the body of the `async with`; call from the event loop."""
        sub = Subscription(loop=asyncio.get_running_loop(), accept=accept)
        with self._lock:
            self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._discard(sub)

    async def stream(
        self,
        *,
        after_id: int | None = None,
        follow: bool = True,
        accept: Callable[[Event], bool] = lambda _event: True,
    ) -> AsyncIterator[Event]:
        """Replay events after `after_id` from the log (if given), then, with `follow`, live ones
        until the subscriber falls too far behind or disconnects."""
        async with self.subscribe(accept) as sub:
            last = self._state.last_event_id()
            if after_id is not None:
                while True:  # page through the backlog; the subscription already buffers new ones
                    batch = [e for e in self._state.events_since(after_id) if e.id <= last]
                    for event in batch:
                        if accept(event):
                            yield event
                    if not batch or batch[-1].id >= last:
                        break
                    after_id = batch[-1].id
            while follow:
                live = await sub.queue.get()
                if live is None:
                    return
                if live.id > last:
                    yield live
