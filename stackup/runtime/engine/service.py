"""One engine's parts wired together: state, events, images, volumes, containers, monitor.

Kept apart from the HTTP layer so the engine can be opened in-process (tests, a future
embedded mode) and so `api.py` depends on one object rather than on every part.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata

from stackup.runtime.engine import conmon
from stackup.runtime.engine.api_models import EngineInfo, VersionInfo
from stackup.runtime.engine.containers import ContainerManager
from stackup.runtime.engine.events import EventBus
from stackup.runtime.engine.images import ImageStore
from stackup.runtime.engine.monitor import Monitor
from stackup.runtime.engine.paths import EnginePaths
from stackup.runtime.engine.records import ContainerStatus, EventType, utcnow
from stackup.runtime.engine.state import StateStore
from stackup.runtime.engine.volumes import VolumeManager


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return out.splitlines()[0].strip() if out.strip() else "unavailable"


@functools.cache
def _tool_versions() -> tuple[str, str]:
    return _first_line([conmon.RUNC, "--version"]), _first_line([conmon.CONMON, "--version"])


def rss_bytes() -> int:
    """This process's resident set size, from /proc (no psutil dependency)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _stackup_version() -> str:
    try:
        return metadata.version("stackup")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass
class EngineService:
    paths: EnginePaths
    state: StateStore
    events: EventBus
    images: ImageStore
    volumes: VolumeManager
    containers: ContainerManager
    monitor: Monitor
    started_at: datetime = field(default_factory=utcnow)
    version: str = field(default_factory=_stackup_version)
    request_shutdown: Callable[[], None] = lambda: None

    @classmethod
    def open(cls, paths: EnginePaths) -> EngineService:
        """Open the state, finish what a previous engine left half-done, re-adopt containers and
        start watching exits. The caller must hold the root's engine lock."""
        for directory in (paths.root, paths.run, paths.tmp, paths.volumes, paths.containers, paths.images):
            directory.mkdir(parents=True, exist_ok=True)
        state = StateStore(paths.state_db)
        events = EventBus(state)
        images = ImageStore(paths)
        volumes = VolumeManager(paths, state, events)
        containers = ContainerManager(paths, state, events, images, volumes)
        monitor = Monitor(containers, state)
        volumes.recover()
        monitor.adopt()
        monitor.start()
        events.publish(EventType.ENGINE, "start", str(os.getpid()))
        return cls(paths, state, events, images, volumes, containers, monitor)

    def close(self) -> None:
        self.monitor.stop()
        self.events.publish(EventType.ENGINE, "stop", str(os.getpid()))
        self.state.close()

    def version_info(self) -> VersionInfo:
        runc_version, conmon_version = _tool_versions()
        return VersionInfo(
            version=self.version, python=platform.python_version(), runc=runc_version, conmon=conmon_version
        )

    def engine_info(self) -> EngineInfo:
        records = self.state.list_containers()
        return EngineInfo(
            pid=os.getpid(),
            root=str(self.paths.root),
            socket=str(self.paths.socket),
            started_at=self.started_at,
            rss_bytes=rss_bytes(),
            containers=len(records),
            running=sum(r.status is ContainerStatus.RUNNING for r in records),
            volumes=len(self.state.list_volumes()),
            images=len(self.images.list()),
        )
