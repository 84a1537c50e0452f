"""Named volumes: a directory per volume, `$STACKUP_ROOT/volumes/<name>/_data`.

Volumes hold the data users care about, so nothing here deletes one implicitly: removing a
container leaves its volumes alone, and removing a volume that a container still mounts is
refused. The `_data` level mirrors Docker's layout, leaving room beside it for metadata.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

from stackup.errors import Conflict, InvalidRequest, NotFound
from stackup.runtime.engine.state.events import EventBus
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import EventType, VolumeRecord, VolumeStatus, labelled_attributes

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class VolumeManager:
    """Create, list, inspect and remove volumes, recording each before touching the disk."""

    def __init__(self, paths: EnginePaths, state: StateStore, events: EventBus) -> None:
        self._paths = paths
        self._state = state
        self._events = events
        self._lock = threading.Lock()  # create/remove of one name must not interleave

    def data_dir(self, name: str) -> Path:
        if not _NAME.match(name):
            raise InvalidRequest(f"invalid volume name {name!r}: use letters, digits, '_', '.', '-'")
        return self._paths.volumes / name / "_data"

    def create(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        driver: str = "local",
        options: Mapping[str, str] | None = None,
    ) -> VolumeRecord:
        """Create a volume, or return the existing one of that name (Docker's create is idempotent)."""
        if driver != "local":
            raise InvalidRequest(f"volume driver {driver!r} is not supported (only 'local')")
        if options:
            raise InvalidRequest(f"volume {name}: driver options are not supported yet: {sorted(options)}")
        data = self.data_dir(name)
        with self._lock:
            try:
                existing = self._state.get_volume(name)
            except NotFound:
                existing = None
            if existing is not None and existing.status is VolumeStatus.READY:
                return existing
            record = self._state.save_volume(
                VolumeRecord(name=name, labels=dict(labels or {}), mountpoint=str(data))
            )
            data.mkdir(parents=True, exist_ok=True)
            record = self._state.save_volume(record.model_copy(update={"status": VolumeStatus.READY}))
        self._events.publish(EventType.VOLUME, "create", name, labelled_attributes(name, record.labels))
        return record

    def get(self, name: str) -> VolumeRecord:
        return self._state.get_volume(name)

    def list_volumes(self, labels: Mapping[str, str | None] | None = None) -> list[VolumeRecord]:
        return self._state.list_volumes(labels)

    def users(self, name: str) -> list[str]:
        """Names of the containers (any state) that mount this volume."""
        data = str(self.data_dir(name))
        return [
            c.name
            for c in self._state.list_containers()
            if any(m.get("source") == data for m in c.config.get("mounts", ()))
        ]

    def remove(self, name: str) -> None:
        """Delete a volume and its data; refused while any container (even stopped) mounts it."""
        with self._lock:
            record = self._state.get_volume(name)
            in_use = self.users(name)
            if in_use:
                raise Conflict(f"volume {name} is in use by {', '.join(sorted(in_use))}")
            self._state.save_volume(record.model_copy(update={"status": VolumeStatus.REMOVING}))
            shutil.rmtree(self._paths.volumes / name, ignore_errors=True)
            self._state.delete_volume(name)
        self._events.publish(EventType.VOLUME, "destroy", name, labelled_attributes(name, record.labels))

    def recover(self) -> None:
        """Finish what a crashed engine left half-done: half-created volumes are completed (their
        directory is empty or absent, so this is safe), half-removed ones are removed."""
        for record in self._state.list_volumes():
            if record.status is VolumeStatus.CREATING:
                Path(record.mountpoint).mkdir(parents=True, exist_ok=True)
                self._state.save_volume(record.model_copy(update={"status": VolumeStatus.READY}))
            elif record.status is VolumeStatus.REMOVING:
                shutil.rmtree(self._paths.volumes / record.name, ignore_errors=True)
                self._state.delete_volume(record.name)
