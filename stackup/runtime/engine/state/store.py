"""The engine's memory: one SQLite database under STACKUP_ROOT.

Why SQLite in WAL mode with `synchronous=NORMAL`: containers outlive the engine, so the database
is the only thing that tells a restarted engine what exists on the machine. A committed row must
survive the engine being killed at any point: in WAL mode NORMAL guarantees that (the WAL is in
the kernel's page cache once a transaction commits) without an fsync per transaction (0.6 ms
each on this machine's disk, far more on a busy or slow one, paid several times per container
under the engine's locks). Only a power cut can lose the last transactions, and a power cut also
takes away every container, mount, bridge and namespace they described. Readers must not block
the writer (WAL), and a second process that opens the file at the same time (a CLI doing
`engine status`) waits instead of failing (busy timeout). The rule every caller follows: record a
resource (`creating`) *before* creating it on the machine and mark it `removing` before tearing
it down, so a crash at any point leaves a row that re-adoption or `down` can find.

One connection guarded by a lock: the engine's request threads, its monitor thread and the event
loop all share it; statements are short, so serialising them costs less than a pool would.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from stackup.errors import Conflict, NotFound, RuntimeFailure
from stackup.runtime.engine.state.sqlite import Database
from stackup.runtime.wire.records import (
    ContainerRecord,
    ContainerStatus,
    Event,
    EventType,
    IpLease,
    NetworkRecord,
    VolumeRecord,
    utcnow,
)

SCHEMA_VERSION = 3
EVENTS_KEPT = 10_000
"""The event log is append-only but bounded: older events are pruned when the engine opens it."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image TEXT NOT NULL, image_id TEXT NOT NULL,
    project TEXT, service TEXT, number INTEGER,
    labels TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER,
    exit_code INTEGER, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    restart_count INTEGER NOT NULL DEFAULT 0, health TEXT, restart TEXT NOT NULL DEFAULT 'no',
    healthcheck TEXT, manually_stopped INTEGER NOT NULL DEFAULT 0, network TEXT,
    hooks TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS containers_project ON containers (project, service);
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY, labels TEXT NOT NULL, options TEXT NOT NULL, mountpoint TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS networks (
    name TEXT PRIMARY KEY, labels TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ip_leases (
    network TEXT NOT NULL, address TEXT NOT NULL, container_id TEXT NOT NULL, leased_at TEXT NOT NULL,
    PRIMARY KEY (network, address));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, type TEXT NOT NULL,
    action TEXT NOT NULL, actor TEXT NOT NULL, attributes TEXT NOT NULL);
"""

_ADDED_COLUMNS = {
    "containers": (
        ("restart", "TEXT NOT NULL DEFAULT 'no'"),
        ("healthcheck", "TEXT"),
        ("manually_stopped", "INTEGER NOT NULL DEFAULT 0"),
        ("network", "TEXT"),
        ("hooks", "TEXT NOT NULL DEFAULT '{}'"),
    ),
}
"""Columns added after schema version 1, added in place to an older database (SQLite cannot
`ADD COLUMN IF NOT EXISTS`), so an engine upgrade keeps every container it knew about."""

_M = TypeVar("_M", bound=BaseModel)

# Columns holding JSON documents rather than scalars, per table.
_JSON = {
    "containers": ("labels", "config", "health", "healthcheck", "network", "hooks"),
    "volumes": ("labels", "options"),
    "networks": ("labels", "config"),
    "ip_leases": (),
    "events": ("attributes",),
}


def _to_row(model: BaseModel, table: str) -> dict[str, Any]:
    row = model.model_dump(mode="json")
    for key in _JSON[table]:
        row[key] = None if row[key] is None else json.dumps(row[key], sort_keys=True)
    return row


def _from_row(cls: type[_M], row: sqlite3.Row, table: str) -> _M:
    data = dict(row)
    for key in _JSON[table]:
        if data[key] is not None:
            data[key] = json.loads(data[key])
    return cls.model_validate(data)


class StateStore(Database):
    """Typed access to the state database; every method is one short transaction."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        super().__init__(path, _SCHEMA, busy_timeout_s=busy_timeout_s)

    def _migrate(self, db: sqlite3.Connection) -> None:
        _add_missing_columns(db)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (EVENTS_KEPT,))

    def _upsert(self, table: str, key: str, model: BaseModel) -> None:
        row = _to_row(model, table)
        columns = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        updates = ", ".join(f"{c}=excluded.{c}" for c in row if c != key)
        with self._tx() as db:
            db.execute(
                f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
                f"ON CONFLICT({key}) DO UPDATE SET {updates}",
                row,
            )

    # -- containers -------------------------------------------------------------------------

    def insert_container(self, record: ContainerRecord) -> ContainerRecord:
        """Record a new container; its name must be free (Docker's names are unique too)."""
        with self._tx() as db:
            taken = db.execute(
                "SELECT id FROM containers WHERE name = ? OR id = ?", (record.name, record.id)
            ).fetchone()
            if taken is not None:
                raise Conflict(f"container name {record.name!r} is already in use by {taken[0]}")
            row = _to_row(record, "containers")
            db.execute(
                f"INSERT INTO containers ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})",
                row,
            )
        return record

    def save_container(self, record: ContainerRecord) -> ContainerRecord:
        self._upsert("containers", "id", record)
        return record

    def update_container(self, container_id: str, **changes: Any) -> ContainerRecord:
        """Change some fields of a container atomically and return the new record."""
        with self._lock:
            current = self.get_container(container_id)
            updated = current.model_validate({**current.model_dump(), **changes})
            # Only the changed columns are written: re-serialising the whole record (its config
            # is most of it) for a status change was a fifth of the engine's database time.
            row = updated.model_dump(mode="json", include=set(changes))
            for key in row.keys() & set(_JSON["containers"]):
                row[key] = None if row[key] is None else json.dumps(row[key], sort_keys=True)
            if row:
                assignments = ", ".join(f"{column} = :{column}" for column in row)
                with self._tx() as db:
                    sql = f"UPDATE containers SET {assignments} WHERE id = :id"
                    db.execute(sql, {**row, "id": container_id})
            return updated

    def get_container(self, container_id: str) -> ContainerRecord:
        rows = self._query("SELECT * FROM containers WHERE id = ?", (container_id,))
        if not rows:
            raise NotFound(f"no such container: {container_id}")
        return _from_row(ContainerRecord, rows[0], "containers")

    def container_ids(self, status: ContainerStatus) -> list[str]:
        """The ids of the containers in `status`, without reading their records (the monitor
        asks every few hundred milliseconds)."""
        return [row[0] for row in self._query("SELECT id FROM containers WHERE status = ?", (status.value,))]

    def find_container(self, ref: str) -> ContainerRecord:
        """Resolve what a user typed: a full id, a name, or an unambiguous id prefix."""
        rows = self._query("SELECT * FROM containers WHERE id = ? OR name = ?", (ref, ref))
        if not rows and ref:
            rows = self._query("SELECT * FROM containers WHERE id LIKE ? || '%'", (ref,))
            if len(rows) > 1:
                raise RuntimeFailure(f"container id prefix {ref!r} is ambiguous")
        if not rows:
            raise NotFound(f"no such container: {ref}")
        return _from_row(ContainerRecord, rows[0], "containers")

    def list_containers(
        self,
        *,
        project: str | None = None,
        service: str | None = None,
        labels: Mapping[str, str | None] | None = None,
    ) -> list[ContainerRecord]:
        """Containers in creation order; `labels` maps key -> value, or key -> None for "has key"."""
        where, args = [], []
        for column, value in (("project", project), ("service", service)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM containers" + (" WHERE " + " AND ".join(where) if where else "")
        records = [
            _from_row(ContainerRecord, r, "containers")
            for r in self._query(sql + " ORDER BY created_at", tuple(args))
        ]
        return [r for r in records if _labels_match(r.labels, labels or {})]

    def delete_container(self, container_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM ip_leases WHERE container_id = ?", (container_id,))
            db.execute("DELETE FROM containers WHERE id = ?", (container_id,))

    # -- volumes ----------------------------------------------------------------------------

    def save_volume(self, record: VolumeRecord) -> VolumeRecord:
        self._upsert("volumes", "name", record)
        return record

    def get_volume(self, name: str) -> VolumeRecord:
        rows = self._query("SELECT * FROM volumes WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no such volume: {name}")
        return _from_row(VolumeRecord, rows[0], "volumes")

    def list_volumes(self, labels: Mapping[str, str | None] | None = None) -> list[VolumeRecord]:
        records = [
            _from_row(VolumeRecord, r, "volumes") for r in self._query("SELECT * FROM volumes ORDER BY name")
        ]
        return [r for r in records if _labels_match(r.labels, labels or {})]

    def delete_volume(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM volumes WHERE name = ?", (name,))

    # -- networks and leases (used by stackup.net through the engine) ------------------------

    def save_network(self, record: NetworkRecord) -> NetworkRecord:
        self._upsert("networks", "name", record)
        return record

    def get_network(self, name: str) -> NetworkRecord:
        rows = self._query("SELECT * FROM networks WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no such network: {name}")
        return _from_row(NetworkRecord, rows[0], "networks")

    def list_networks(self) -> list[NetworkRecord]:
        return [
            _from_row(NetworkRecord, r, "networks")
            for r in self._query("SELECT * FROM networks ORDER BY name")
        ]

    def delete_network(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM ip_leases WHERE network = ?", (name,))
            db.execute("DELETE FROM networks WHERE name = ?", (name,))

    def add_lease(self, lease: IpLease) -> IpLease:
        """Persist an address; fails if another container holds it on that network."""
        with self._tx() as db:
            holder = db.execute(
                "SELECT container_id FROM ip_leases WHERE network = ? AND address = ?",
                (lease.network, lease.address),
            ).fetchone()
            if holder is not None and holder[0] != lease.container_id:
                raise RuntimeFailure(f"address {lease.address} on {lease.network} is leased to {holder[0]}")
            row = _to_row(lease, "ip_leases")
            db.execute(
                "INSERT OR REPLACE INTO ip_leases (network, address, container_id, leased_at) "
                "VALUES (:network, :address, :container_id, :leased_at)",
                row,
            )
        return lease

    def leases(self, *, network: str | None = None, container_id: str | None = None) -> list[IpLease]:
        sql, args = "SELECT * FROM ip_leases WHERE 1=1", list[str]()
        if network is not None:
            sql, args = sql + " AND network = ?", [*args, network]
        if container_id is not None:
            sql, args = sql + " AND container_id = ?", [*args, container_id]
        return [
            _from_row(IpLease, r, "ip_leases") for r in self._query(sql + " ORDER BY address", tuple(args))
        ]

    def leased_addresses(self, network: str) -> list[str]:
        """The addresses leased on `network`, without reading whole lease records (asked once per
        container connected: the records made that quadratic in the network's size)."""
        return [row[0] for row in self._query("SELECT address FROM ip_leases WHERE network = ?", (network,))]

    def release_leases(self, container_id: str, network: str | None = None) -> None:
        with self._tx() as db:
            if network is None:
                db.execute("DELETE FROM ip_leases WHERE container_id = ?", (container_id,))
            else:
                db.execute(
                    "DELETE FROM ip_leases WHERE container_id = ? AND network = ?", (container_id, network)
                )

    # -- events -----------------------------------------------------------------------------

    def append_event(
        self, type_: EventType, action: str, actor: str, attributes: Mapping[str, str] | None = None
    ) -> Event:
        time = utcnow()
        attrs = dict(attributes or {})
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO events (time, type, action, actor, attributes) VALUES (?, ?, ?, ?, ?)",
                (time.isoformat(), type_.value, action, actor, json.dumps(attrs, sort_keys=True)),
            )
            event_id = cursor.lastrowid
        assert event_id is not None
        return Event(id=event_id, time=time, type=type_, action=action, actor=actor, attributes=attrs)

    def events_since(
        self, after_id: int = 0, *, since: datetime | None = None, limit: int = 1000
    ) -> list[Event]:
        """Events with id > `after_id` (and at or after `since`), oldest first."""
        sql, args = "SELECT * FROM events WHERE id > ?", list[int | str]([after_id])
        if since is not None:
            sql, args = sql + " AND time >= ?", [*args, since.isoformat()]
        rows = self._query(sql + " ORDER BY id LIMIT ?", (*args, limit))
        return [_from_row(Event, r, "events") for r in rows]

    def last_event_id(self) -> int:
        rows = self._query("SELECT COALESCE(MAX(id), 0) FROM events")
        return int(rows[0][0])


def _add_missing_columns(db: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, ddl in columns:
            if name not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")


def _labels_match(labels: Mapping[str, str], wanted: Mapping[str, str | None]) -> bool:
    return all(key in labels and (value is None or labels[key] == value) for key, value in wanted.items())
