"""What the engine remembers about each resource, as frozen values.

The same models are the rows of the state database and the bodies of the API's inspect and
list answers, so the client sees exactly what the engine recorded and nothing is translated twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stackup.runtime import labels as lbl
from stackup.runtime.wire.imageconfig import HealthConfig
from stackup.runtime.wire.models import ContainerHooks


def utcnow() -> datetime:
    """Timezone-aware now; every recorded time is UTC so engines and clients agree."""
    return datetime.now(UTC)


class ContainerStatus(StrEnum):
    """Where a container is in its life.

    `creating` and `removing` are the crash-safety states: a record is written as `creating`
    before anything exists on the machine and as `removing` before anything is torn down, so an
    engine that died half-way finds the record on restart and finishes (or rolls back) the job.
    """

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    REMOVING = "removing"


class VolumeStatus(StrEnum):
    """A volume is `creating` until its data directory exists, then `ready`."""

    CREATING = "creating"
    READY = "ready"
    REMOVING = "removing"


class NetworkStatus(StrEnum):
    """Same crash-safety states as volumes: recorded before the bridge exists."""

    CREATING = "creating"
    READY = "ready"
    REMOVING = "removing"


class EventType(StrEnum):
    """The kind of resource an event is about (Docker's `Type`)."""

    CONTAINER = "container"
    IMAGE = "image"
    VOLUME = "volume"
    NETWORK = "network"
    ENGINE = "engine"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContainerEndpoint(_Frozen):
    """The container's interface on one network and the names it answers to there."""

    network: str
    address: str
    names: tuple[str, ...] = ()


class PublishedPort(_Frozen):
    """A published port with the host port actually bound (a random one resolved), for `port`/`ps`."""

    container_port: int
    host_port: int
    host_ip: str = ""
    protocol: str = "tcp"


class ContainerNetwork(_Frozen):
    """How the container is networked, recorded at create (addresses survive stop, start and a
    restored engine, so `ps` and `port` need not ask the network manager).

    `mode` is what the client asked for (`bridge`, `none`, `host`, `container:<id>`);
    `owns_netns` says this container's namespace is its own and dies with it (not one it joined).
    """

    mode: str = "none"
    owns_netns: bool = False
    endpoints: tuple[ContainerEndpoint, ...] = ()
    ports: tuple[PublishedPort, ...] = ()


class ContainerRecord(_Frozen):
    """One container as the engine knows it.

    `config` is the `ContainerConfig` the container was created from, kept as JSON so the state
    database does not depend on that model's Python class and old rows stay readable. `image` is
    the reference the client asked for, `image_id` what it resolved to (images in use by a
    container are never deleted). `restart` and `healthcheck` (the request's check merged with
    the image's, Docker's wire form) are what the supervisor runs; `health` is its last recorded
    view (status, failing streak, recent probe outputs). `manually_stopped` is Docker's
    `HasBeenManuallyStopped`: what `unless-stopped` asks when the engine starts. `hooks` are
    the `post_start` / `pre_stop` commands the engine runs around starts and stops.
    """

    id: str
    name: str
    image: str = ""
    image_id: str = ""
    project: str | None = None
    service: str | None = None
    number: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    status: ContainerStatus = ContainerStatus.CREATING
    pid: int | None = None
    exit_code: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int = 0
    health: dict[str, Any] | None = None
    restart: str = "no"
    healthcheck: HealthConfig | None = None
    manually_stopped: bool = False
    network: ContainerNetwork | None = None
    hooks: ContainerHooks = ContainerHooks()

    @property
    def is_live(self) -> bool:
        """True while an OCI runtime container may exist for this record (created or running)."""
        return self.status in (ContainerStatus.CREATED, ContainerStatus.RUNNING)


EVENT_LABELS = (lbl.PROJECT, lbl.SERVICE, lbl.CONTAINER_NUMBER, lbl.ONEOFF)
"""The labels a container event carries. Docker copies every label; these identify the container
(enough for a client to keep one project's events) without copying the serialised service
(`io.stackup.config`) into every row of the event log."""


def labelled_attributes(name: str, labels: Mapping[str, str]) -> dict[str, str]:
    """A network or volume event's attributes: its name and its project label (what the
    `project` filter of `/events` selects on)."""
    return {"name": name, **({lbl.PROJECT: labels[lbl.PROJECT]} if lbl.PROJECT in labels else {})}


def event_attributes(record: ContainerRecord, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A container event's attributes: its identity labels, its name, then what the action adds."""
    identity = {key: record.labels[key] for key in EVENT_LABELS if key in record.labels}
    return {**identity, "name": record.name, **(extra or {})}


class VolumeRecord(_Frozen):
    """A named volume; its data lives in `<volumes>/<name>/_data` and is never deleted implicitly."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    options: dict[str, str] = Field(default_factory=dict)
    mountpoint: str
    status: VolumeStatus = VolumeStatus.CREATING
    created_at: datetime = Field(default_factory=utcnow)


class NetworkRecord(_Frozen):
    """A stack network; `config` is owned by `stackup.net` and stored opaquely here."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    status: NetworkStatus = NetworkStatus.CREATING
    created_at: datetime = Field(default_factory=utcnow)


class IpLease(_Frozen):
    """One address handed to one container on one network; persisted so restarts keep addresses."""

    network: str
    address: str
    container_id: str
    leased_at: datetime = Field(default_factory=utcnow)


class Event(_Frozen):
    """One line of the append-only event log; `id` orders events and lets `/events?since=` resume."""

    id: int
    time: datetime
    type: EventType
    action: str
    actor: str
    attributes: dict[str, str] = Field(default_factory=dict)
