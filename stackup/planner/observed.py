"""A snapshot of what exists for one project, with labels parsed into typed fields.

`observe` is the only place the planner reads from a runtime; `reconcile` then works on this
value and nothing else, which is what lets planner tests be a hand-made `Observed` in and a golden
`str(plan)` out. Containers are sorted by (service, number, name) so that when two containers
claim the same replica the choice is the same on every run, whatever order the engine listed them.

Labels are read as stackup writes them (`io.stackup.*`) and, where those are absent, as Docker
Compose writes them (`com.docker.compose.*`): a stack Compose started is then this project's
stack, which `up` adopts and `down` removes. Compose's config hash is not stackup's, so an adopted
container carries no `config_hash`; reconcile decides on what the runtime read back from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stackup.runtime import labels as lbl
from stackup.runtime.base import (
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    Health,
    ImageInfo,
    NetworkInfo,
    Runtime,
    VolumeInfo,
)


@dataclass(frozen=True, slots=True)
class ObservedContainer:
    """One container of the project, as its labels and the engine describe it."""

    id: str
    name: str
    service: str
    number: int
    state: ContainerState = ContainerState.RUNNING
    health: Health = Health.NONE
    exit_code: int | None = None
    config_hash: str = ""
    components: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, Any] | None = None
    image: str = ""
    image_id: str | None = None
    oneoff: bool = False
    depends_on: tuple[str, ...] = ()
    spec: ContainerSpec | None = None
    """Read back by the runtime for a container another tool made (see `planner/adoption.py`)."""

    @property
    def running(self) -> bool:
        return self.state in (ContainerState.RUNNING, ContainerState.RESTARTING)

    @classmethod
    def from_info(cls, info: ContainerInfo) -> ObservedContainer | None:
        """Parse one container's labels; None when it is not a replica of a service."""
        lab = info.labels
        service = _label(lab, lbl.SERVICE, lbl.COMPOSE_SERVICE)
        if not service:
            return None
        try:
            number = int(_label(lab, lbl.CONTAINER_NUMBER, lbl.COMPOSE_CONTAINER_NUMBER) or "1")
        except ValueError:
            number = 0  # unreadable number: treated as an extra replica, so it gets removed
        return cls(
            id=info.id,
            name=info.name,
            service=service,
            number=number,
            state=info.state,
            health=info.health,
            exit_code=info.exit_code,
            config_hash=lab.get(lbl.CONFIG_HASH, ""),
            components=_json_object(lab.get(lbl.CONFIG_HASH_COMPONENTS)) or {},
            config=_json_object(lab.get(lbl.CONFIG)),
            image=info.image,
            image_id=info.image_id or lab.get(lbl.IMAGE_ID),
            oneoff=_label(lab, lbl.ONEOFF, lbl.COMPOSE_ONEOFF) == lbl.TRUE,
            depends_on=tuple(
                d.split(":", 1)[0]
                for d in (_label(lab, lbl.DEPENDS_ON, lbl.COMPOSE_DEPENDS_ON) or "").split(",")
                if d
            ),
            spec=info.spec,
        )


@dataclass(frozen=True, slots=True)
class ObservedNetwork:
    """`project` is the owning project's label; None for networks stackup did not make."""

    name: str
    id: str = ""
    project: str | None = None


@dataclass(frozen=True, slots=True)
class ObservedVolume:
    name: str
    project: str | None = None


@dataclass(frozen=True, slots=True)
class Observed:
    """What exists now. `images` maps every local reference (`nginx:1.25`) to its image ID."""

    project: str
    containers: tuple[ObservedContainer, ...] = ()
    networks: Mapping[str, ObservedNetwork] = field(default_factory=dict)
    volumes: Mapping[str, ObservedVolume] = field(default_factory=dict)
    images: Mapping[str, str] = field(default_factory=dict)
    pulled: Mapping[str, datetime] = field(default_factory=dict)
    """When each reference's image was last pulled from a registry (absent: never)."""

    def by_service(self) -> dict[str, list[ObservedContainer]]:
        """Non-one-off containers grouped by service, each group in (number, name) order."""
        out: dict[str, list[ObservedContainer]] = {}
        for c in self.containers:
            if not c.oneoff:
                out.setdefault(c.service, []).append(c)
        return out

    @classmethod
    def build(
        cls,
        project: str,
        containers: Iterable[ContainerInfo] = (),
        networks: Iterable[NetworkInfo] = (),
        volumes: Iterable[VolumeInfo] = (),
        images: Iterable[ImageInfo] = (),
    ) -> Observed:
        """Assemble a snapshot from runtime listings (pure: tests call it with hand-made infos)."""
        parsed = (ObservedContainer.from_info(i) for i in containers if project_of(i.labels) == project)
        found = sorted((c for c in parsed if c is not None), key=lambda c: (c.service, c.number, c.name))
        return cls(
            project=project,
            containers=tuple(found),
            networks={n.name: ObservedNetwork(n.name, n.id, project_of(n.labels)) for n in networks},
            volumes={v.name: ObservedVolume(v.name, project_of(v.labels)) for v in volumes},
            images=_image_refs(images),
            pulled={ref: img.last_pulled for img in images for ref in img.refs if img.last_pulled},
        )


def _image_refs(images: Iterable[ImageInfo]) -> dict[str, str]:
    """Every local reference -> image ID; `name:latest` also answers to `name`, the way a stack file
    names it (`image: nginx`, or Compose's `<project>-<service>` tag of a build), so a built or
    pulled image is found again instead of rebuilt (and its containers recreated) on every `up`."""
    out: dict[str, str] = {}
    for img in images:
        for ref in img.refs:
            out[ref] = img.id
            if ref.endswith(":latest"):
                out.setdefault(ref.removesuffix(":latest"), img.id)
    return out


def observe(runtime: Runtime, project: str, *, images: bool = True) -> Observed:
    """Read everything `reconcile` needs in one pass; all of the planner's reads happen here.

    A runtime whose full listing costs a request per container (Docker: list, then inspect) may
    offer `list_containers_brief` with what `reconcile` reads; it is used when present. Without
    `images` the store's images are not listed (`down` plans without them: one request and the
    whole image list's decoding fewer)."""
    listing = getattr(runtime, "list_containers_brief", None) or runtime.list_containers
    return Observed.build(
        project,
        containers=listing(project),
        networks=runtime.list_networks(),
        volumes=runtime.list_volumes(),
        images=runtime.list_images() if images else (),
    )


def _label(labels: Mapping[str, str], ours: str, compose: str) -> str | None:
    """stackup's label, else Docker Compose's equivalent (a stack Compose made)."""
    return labels.get(ours) or labels.get(compose)


def project_of(labels: Mapping[str, str]) -> str | None:
    """The project a resource belongs to, by stackup's label or else Compose's."""
    return _label(labels, lbl.PROJECT, lbl.COMPOSE_PROJECT)


def _json_object(text: str | None) -> dict[str, Any] | None:
    """A label holding a JSON object; anything else (absent, corrupt) reads as None, never raises."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
