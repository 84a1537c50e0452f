"""The state database and the event bus, without an engine process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.engine.state.events import EventBus
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import (
    ContainerRecord,
    ContainerStatus,
    Event,
    EventType,
    IpLease,
    NetworkRecord,
    VolumeRecord,
    VolumeStatus,
)


@pytest.fixture
def store(stackup_root: Path) -> Iterator[StateStore]:
    state = StateStore(EnginePaths.from_env().state_db)
    yield state
    state.close()


def _container(cid: str, name: str, **labels: str) -> ContainerRecord:
    return ContainerRecord(id=cid, name=name, image="busybox", labels=labels, project=labels.get("p"))


def test_database_is_wal_with_normal_sync(store: StateStore) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: durable across crashes in WAL


def test_container_round_trip_survives_reopen(store: StateStore) -> None:
    record = _container("a" * 64, "web-1", p="shop")
    store.insert_container(record)
    store.update_container(record.id, status=ContainerStatus.RUNNING, pid=42)
    reopened = StateStore(store.path)
    try:
        got = reopened.get_container(record.id)
    finally:
        reopened.close()
    assert got.status is ContainerStatus.RUNNING
    assert got.pid == 42
    assert got.labels == {"p": "shop"}
    assert got.created_at == record.created_at


def test_names_are_unique_and_refs_resolve(store: StateStore) -> None:
    store.insert_container(_container("ab12" + "0" * 60, "web"))
    store.insert_container(_container("ab34" + "0" * 60, "db"))
    with pytest.raises(RuntimeFailure, match="already in use"):
        store.insert_container(_container("cd" + "0" * 62, "web"))
    assert store.find_container("web").id.startswith("ab12")
    assert store.find_container("ab34").name == "db"
    with pytest.raises(RuntimeFailure, match="ambiguous"):
        store.find_container("ab")
    with pytest.raises(NotFound):
        store.find_container("nope")


def test_list_filters_by_project_and_labels(store: StateStore) -> None:
    store.insert_container(_container("1" * 64, "a", p="one", tier="web"))
    store.insert_container(_container("2" * 64, "b", p="two", tier="db"))
    store.insert_container(_container("3" * 64, "c", p="one"))
    assert [c.name for c in store.list_containers(project="one")] == ["a", "c"]
    assert [c.name for c in store.list_containers(labels={"tier": None})] == ["a", "b"]
    assert [c.name for c in store.list_containers(labels={"tier": "db"})] == ["b"]


def test_volumes_networks_and_leases(store: StateStore) -> None:
    store.save_volume(VolumeRecord(name="data", mountpoint="/x/_data", status=VolumeStatus.READY))
    assert store.get_volume("data").status is VolumeStatus.READY
    store.save_network(NetworkRecord(name="net", config={"subnet": "10.1.0.0/24"}))
    store.add_lease(IpLease(network="net", address="10.1.0.2", container_id="c1"))
    with pytest.raises(RuntimeFailure, match="leased to c1"):
        store.add_lease(IpLease(network="net", address="10.1.0.2", container_id="c2"))
    assert [lease.address for lease in store.leases(network="net")] == ["10.1.0.2"]
    store.delete_network("net")
    assert store.leases() == []
    store.delete_volume("data")
    with pytest.raises(NotFound):
        store.get_volume("data")


def test_concurrent_writers_do_not_lose_updates(store: StateStore) -> None:
    def write(n: int) -> None:
        for i in range(20):
            store.append_event(EventType.CONTAINER, "tick", f"{n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = store.events_since(0)
    assert len(events) == 80
    assert [e.id for e in events] == sorted(e.id for e in events)


def test_event_stream_replays_then_follows_without_gaps(store: StateStore) -> None:
    bus = EventBus(store)
    first = bus.publish(EventType.VOLUME, "create", "old")

    async def scenario() -> list[Event]:
        seen: list[Event] = []
        stream = bus.stream(after_id=0)
        seen.append(await anext(stream))  # the backlog
        await asyncio.to_thread(bus.publish, EventType.VOLUME, "destroy", "old")  # from another thread
        seen.append(await asyncio.wait_for(anext(stream), 5))
        await stream.aclose()
        return seen

    seen = asyncio.run(scenario())
    assert [(e.action, e.actor) for e in seen] == [("create", "old"), ("destroy", "old")]
    assert seen[0].id == first.id


def test_event_stream_without_follow_ends_after_backlog(store: StateStore) -> None:
    bus = EventBus(store)
    for action in ("create", "start", "die"):
        bus.publish(EventType.CONTAINER, action, "c")

    async def collect() -> list[str]:
        return [e.action async for e in bus.stream(after_id=1, follow=False)]

    assert asyncio.run(collect()) == ["start", "die"]
