"""Turn a client's `ContainerCreate` plus its image into a concrete `ContainerConfig`.

This is where Docker's inheritance rules live, in one pure-ish function: the image supplies the
entrypoint, command, environment, working directory, user and stop signal unless the request
overrides them, and overriding the entrypoint drops the image's command (as `docker run
--entrypoint` does). Volume mounts name volumes; they are resolved to data directories here,
and a missing bind source is created as a directory (Compose's `create_host_path` default).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackup import keyvalue
from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers.config import (
    ContainerConfig,
    NetworkMode,
    default_cgroup_parent,
)
from stackup.runtime.wire.imageconfig import HealthConfig
from stackup.runtime.wire.images import Image
from stackup.runtime.wire.models import ContainerCreate, MountKind, MountRequest


def command_line(request: ContainerCreate, image: Image) -> tuple[str, ...]:
    """entrypoint + command with Docker's rule: a new entrypoint discards the image's command."""
    entrypoint = request.entrypoint if request.entrypoint is not None else image.config.entrypoint or ()
    if request.command is not None:
        command: tuple[str, ...] = request.command
    elif request.entrypoint is not None:
        command = ()
    else:
        command = image.config.cmd or ()
    args = (*entrypoint, *command)
    if not args:
        raise RuntimeFailure(f"container {request.name}: no command given and image {request.image} has none")
    return args


def environment(request: ContainerCreate, image: Image) -> dict[str, str]:
    """The image's `KEY=value` list with the request's variables laid over it."""
    return keyvalue.to_dict(image.config.env) | request.env


def _mount(spec: MountRequest, volume_dir: Callable[[str], Path]) -> dict[str, Any]:
    mount: dict[str, Any] = {
        "kind": spec.kind,
        "target": spec.target,
        "read_only": spec.read_only,
        "tmpfs_size": spec.tmpfs_size,
        "tmpfs_mode": spec.tmpfs_mode,
    }
    if spec.kind is MountKind.VOLUME:
        if not spec.source:
            raise RuntimeFailure(f"volume mount at {spec.target} names no volume")
        mount["source"] = str(volume_dir(spec.source))
    elif spec.kind is MountKind.BIND:
        # Compose's `create_host_path` defaults to true: a missing bind source becomes a directory.
        source = Path(spec.source) if spec.source else None
        if source is not None and source.is_absolute() and not source.exists():  # a file stays a file
            source.mkdir(parents=True, exist_ok=True)
        mount["source"] = spec.source
    return mount


def healthcheck(request: ContainerCreate, image: Image) -> HealthConfig | None:
    """The check to record: the request's over the image's HEALTHCHECK (`HealthConfig.over`).

    Stored in this wire form, resolved by the supervisor.
    """
    own, base = request.healthcheck, image.config.healthcheck
    if own is None or base is None:
        return own if own is not None else base
    return own.over(base)


def build_config(
    request: ContainerCreate,
    image: Image,
    *,
    container_id: str,
    rootfs: Path,
    engine_root: Path,
    volume_dir: Callable[[str], Path],
    network_mode: NetworkMode = NetworkMode.NONE,
) -> ContainerConfig:
    """The concrete config; `volume_dir(name)` returns (creating if needed) a volume's data dir.

    `network_mode` is `none` or `host`; a namespace to join (`path`) is filled in once the
    network manager has made it."""
    defaults: dict[str, Any] = {}
    if image.config.stop_signal:
        defaults["stop_signal"] = image.config.stop_signal
    return ContainerConfig.model_validate(
        {
            **defaults,
            **request.options.model_dump(exclude_defaults=True),
            "id": container_id,
            "name": request.name,
            "rootfs": rootfs,
            "args": command_line(request, image),
            "env": environment(request, image),
            "cwd": request.cwd or image.config.working_dir or "/",
            "user": request.user if request.user is not None else image.config.user,
            "mounts": [_mount(m, volume_dir) for m in request.mounts],
            "cgroup_parent": default_cgroup_parent(engine_root),
            "hostname": request.hostname or "",
            "network_mode": network_mode,
        }
    )
