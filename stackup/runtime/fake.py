"""A stateful in-memory `Runtime` for planner and executor tests (a fake, never a Mock).

It keeps real state (containers with states, networks, volumes, images) and enforces the rules
an engine would (names unique, removing a running container fails, starting needs the image), so
tests assert on where things ended up rather than on which calls were made. Behaviour is scripted
per service: healthy after N polls, unhealthy with a probe output, exits with a code, fails to
start. `timeline` records every start in order and `max_in_flight` the peak number of concurrent
calls, so ordering and parallelism are checked from state, never from the clock.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime import labels as lbl
from stackup.runtime.base import (
    BuildProgress,
    BuildSpec,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    Health,
    ImageInfo,
    NetworkInfo,
    NetworkSpec,
    TransferProgress,
    VolumeInfo,
    VolumeSpec,
)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the containers of one service act once started.

    `healthy_after`: polls (inspections) before health turns healthy; `unhealthy_after` + `probe`:
    polls before it turns unhealthy with that last probe output; `exit_code` + `exit_after`: the
    process exits with that code after that many polls; `fail_start`: start raises this message;
    `rendezvous`: start blocks until that many containers with the same rendezvous are starting
    at once (proves overlap without timing; raises after `rendezvous_timeout_s` if they never meet).
    """

    healthy_after: int | None = None
    unhealthy_after: int | None = None
    probe: str = ""
    exit_code: int | None = None
    exit_after: int = 0
    fail_start: str | None = None
    rendezvous: threading.Barrier | None = None
    rendezvous_timeout_s: float = 10.0


@dataclass(slots=True)
class _Container:
    info: ContainerInfo
    spec: ContainerSpec
    polls: int = 0


class FakeRuntime:
    """In-memory engine. Thread-safe: one lock guards all state."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.containers: dict[str, _Container] = {}
        self.networks: dict[str, NetworkInfo] = {}
        self.volumes: dict[str, VolumeInfo] = {}
        self.images: dict[str, ImageInfo] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.timeline: list[tuple[str, str]] = []  # (verb, container/resource name), in call order
        self.in_flight = 0
        self.max_in_flight = 0
        self.registry: dict[str, str] = {}  # pullable ref -> image id; unknown refs get a made-up id

    # -- scripting ------------------------------------------------------------------------------

    def behave(self, service: str, behaviour: Behaviour) -> None:
        self.behaviours[service] = behaviour

    def add_image(self, ref: str, image_id: str) -> None:
        with self._lock:
            old = self.images.get(image_id)
            refs = (*(old.refs if old else ()), ref)
            self.images = {
                i: replace(img, refs=tuple(r for r in img.refs if r != ref)) for i, img in self.images.items()
            }
            self.images[image_id] = ImageInfo(image_id, tuple(dict.fromkeys(refs)))

    def started(self) -> list[str]:
        """Container names in the order they were started."""
        with self._lock:
            return [name for verb, name in self.timeline if verb == "start"]

    def by_name(self, name: str) -> ContainerInfo:
        with self._lock:
            for c in self.containers.values():
                if c.info.name == name:
                    return c.info
        raise NotFound(f"no such container: {name}")

    @contextmanager
    def _call(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    # -- containers -----------------------------------------------------------------------------

    def list_containers(self, project: str) -> list[ContainerInfo]:
        with self._lock:
            return [c.info for c in self.containers.values() if c.info.labels.get(lbl.PROJECT) == project]

    def inspect_container(self, container_id: str) -> ContainerInfo:
        with self._lock:
            c = self._get(container_id)
            c.polls += 1
            self._advance(c)
            return c.info

    def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        with self._call(), self._lock:
            if any(c.info.name == spec.name for c in self.containers.values()):
                raise RuntimeFailure(f"container name {spec.name} is already in use")
            image = self._image(spec.image)
            cid = f"c{next(self._ids):011d}"
            info = ContainerInfo(
                id=cid, name=spec.name, image=spec.image, labels=dict(spec.labels), image_id=image.id
            )
            self.containers[cid] = _Container(info, spec)
            self.timeline.append(("create", spec.name))
            return info

    def start_container(self, container_id: str) -> None:
        with self._call():
            with self._lock:
                c = self._get(container_id)
                behaviour = self._behaviour(c)
            if behaviour.rendezvous is not None:
                try:
                    behaviour.rendezvous.wait(behaviour.rendezvous_timeout_s)
                except threading.BrokenBarrierError as exc:
                    raise RuntimeFailure(f"{c.info.name}: rendezvous never completed") from exc
            with self._lock:
                self.timeline.append(("start", c.info.name))
                if behaviour.fail_start is not None:
                    c.info = replace(c.info, state=ContainerState.EXITED, exit_code=127)
                    raise RuntimeFailure(f"{c.info.name}: {behaviour.fail_start}")
                check = c.spec.healthcheck
                starting = (check is not None and not check.disabled) or behaviour.healthy_after is not None
                health = Health.STARTING if starting or behaviour.unhealthy_after is not None else Health.NONE
                c.info = replace(c.info, state=ContainerState.RUNNING, health=health, exit_code=None)
                c.polls = 0
                self._advance(c)

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None:
        with self._call(), self._lock:
            c = self._get(container_id)
            self.timeline.append(("stop", c.info.name))
            if c.info.state in (ContainerState.RUNNING, ContainerState.RESTARTING, ContainerState.PAUSED):
                c.info = replace(c.info, state=ContainerState.EXITED, exit_code=0, health=Health.NONE)

    def remove_container(self, container_id: str) -> None:
        with self._call(), self._lock:
            c = self._get(container_id)
            if c.info.state is ContainerState.RUNNING:
                raise RuntimeFailure(f"cannot remove running container {c.info.name}")
            self.timeline.append(("remove", c.info.name))
            del self.containers[container_id]

    def _get(self, container_id: str) -> _Container:
        c = self.containers.get(container_id)
        if c is None:
            raise NotFound(f"no such container: {container_id}")
        return c

    def _behaviour(self, c: _Container) -> Behaviour:
        return self.behaviours.get(c.info.labels.get(lbl.SERVICE, ""), Behaviour())

    def _advance(self, c: _Container) -> None:
        """Apply the scripted behaviour for the number of polls seen so far."""
        if c.info.state is not ContainerState.RUNNING:
            return
        b = self._behaviour(c)
        if b.exit_code is not None and c.polls >= b.exit_after:
            c.info = replace(c.info, state=ContainerState.EXITED, exit_code=b.exit_code)
            self.timeline.append(("exit", c.info.name))
            return
        if c.info.health is not Health.STARTING:
            return
        if b.unhealthy_after is not None and c.polls >= b.unhealthy_after:
            c.info = replace(c.info, health=Health.UNHEALTHY, last_probe=b.probe)
            self.timeline.append(("unhealthy", c.info.name))
        elif c.polls >= _healthy_threshold(b):
            c.info = replace(c.info, health=Health.HEALTHY, last_probe=b.probe or None)
            self.timeline.append(("healthy", c.info.name))

    # -- networks, volumes, images --------------------------------------------------------------

    def list_networks(self) -> list[NetworkInfo]:
        with self._lock:
            return list(self.networks.values())

    def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        with self._call(), self._lock:
            if spec.name in self.networks:
                raise RuntimeFailure(f"network {spec.name} already exists")
            info = NetworkInfo(spec.name, f"n{next(self._ids):011d}", dict(spec.labels))
            self.networks[spec.name] = info
            self.timeline.append(("create-network", spec.name))
            return info

    def remove_network(self, name: str) -> None:
        with self._call(), self._lock:
            if name not in self.networks:
                raise NotFound(f"no such network: {name}")
            users = [
                c.info.name
                for c in self.containers.values()
                if any(a.network == name for a in c.spec.networks)
            ]
            if users:
                raise RuntimeFailure(f"network {name} is in use by {', '.join(sorted(users))}")
            del self.networks[name]
            self.timeline.append(("remove-network", name))

    def list_volumes(self) -> list[VolumeInfo]:
        with self._lock:
            return list(self.volumes.values())

    def create_volume(self, spec: VolumeSpec) -> VolumeInfo:
        with self._call(), self._lock:
            info = VolumeInfo(spec.name, dict(spec.labels))
            self.volumes.setdefault(spec.name, info)
            self.timeline.append(("create-volume", spec.name))
            return info

    def remove_volume(self, name: str) -> None:
        with self._call(), self._lock:
            if self.volumes.pop(name, None) is None:
                raise NotFound(f"no such volume: {name}")
            self.timeline.append(("remove-volume", name))

    def list_images(self) -> list[ImageInfo]:
        with self._lock:
            return list(self.images.values())

    def pull_image(self, ref: str, *, platform: str | None = None,
                   progress: TransferProgress | None = None) -> ImageInfo:
        with self._call():
            image_id = self.registry.get(ref, _digest(f"pull {ref}"))
            self.add_image(ref, image_id)
            with self._lock:
                self.timeline.append(("pull", ref))
                return self.images[image_id]

    def push_image(self, ref: str, *, progress: TransferProgress | None = None) -> str:
        with self._call():
            image = self._image(ref)
            with self._lock:
                self.timeline.append(("push", ref))
            return image.id

    def tag_image(self, ref: str, target: str) -> ImageInfo:
        with self._call():
            image = self._image(ref)
            self.add_image(target, image.id)
            with self._lock:
                self.timeline.append(("tag", target))
                return self.images[image.id]

    def build_image(self, spec: BuildSpec, progress: BuildProgress | None = None) -> ImageInfo:
        with self._call():
            image_id = self.registry.get(spec.tag, _digest(f"build {spec.tag} {len(self.timeline)}"))
            self.add_image(spec.tag, image_id)
            with self._lock:
                self.timeline.append(("build", spec.tag))
                return self.images[image_id]

    def remove_image(self, ref: str) -> None:
        with self._call(), self._lock:
            image = self._image(ref)
            del self.images[image.id]
            self.timeline.append(("remove-image", ref))

    def _image(self, ref: str) -> ImageInfo:
        for image in self.images.values():
            if ref in image.refs or ref == image.id:
                return image
        raise NotFound(f"no such image: {ref}")


def _digest(text: str) -> str:
    """A stable made-up image ID (Python's `hash()` changes between runs)."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _healthy_threshold(b: Behaviour) -> float:
    """Polls until healthy: as scripted, never when only unhealthiness is scripted, else one."""
    if b.healthy_after is not None:
        return b.healthy_after
    return float("inf") if b.unhealthy_after is not None else 1
