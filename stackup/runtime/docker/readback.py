"""A container another tool made, read back as the `ContainerSpec` that would make it again.

Docker Compose records its own config hash, which stackup cannot reproduce, so for a container
that carries no stackup config label (adopted: made by `docker-compose` / `docker compose`) the
runtime reconstructs the spec from `docker inspect` and hands it to the planner
(`ContainerInfo.spec`), which compares it with the spec it wants (`planner/adoption.py`).

The daemon merges the image's defaults into a container's config, so they are subtracted again
here: an environment entry, label, command, entrypoint, user, working directory, stop signal,
healthcheck or volume that equals the image's reads as "not set by the stack file". Names the
daemon adds on its own (the short ID as hostname and alias, the hostname and the replica name as
aliases) are dropped too: the stack file did not ask for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackup.runtime import labels as lbl
from stackup.runtime.base import (
    ContainerSpec,
    HealthcheckSpec,
    Limits,
    Mount,
    MountType,
    NetworkAttachment,
    PortBinding,
)

_NS = 1_000_000_000
_MOUNT_TYPES = {t.value: t for t in MountType}
_OWN_PREFIXES = (f"{lbl.PREFIX}.", f"{lbl.COMPOSE_PREFIX}.")


def _seconds(ns: int | None) -> float | None:
    return ns / _NS if ns else None


def _healthcheck(check: Mapping[str, Any] | None, image: Mapping[str, Any] | None) -> HealthcheckSpec | None:
    if not check or check == image:
        return None
    test = tuple(check.get("Test") or ())
    if test[:1] == ("NONE",):
        return HealthcheckSpec(test=("NONE",))
    return HealthcheckSpec(
        test=test,
        interval_s=_seconds(check.get("Interval")),
        timeout_s=_seconds(check.get("Timeout")),
        retries=check.get("Retries") or None,
        start_period_s=_seconds(check.get("StartPeriod")),
        start_interval_s=_seconds(check.get("StartInterval")),
    )


def _mounts(data: Mapping[str, Any], image_volumes: Mapping[str, Any]) -> tuple[Mount, ...]:
    host = data.get("HostConfig") or {}
    out: dict[str, Mount] = {}
    for bind in host.get("Binds") or ():
        source, _, rest = bind.partition(":")
        target, _, mode = rest.partition(":")
        kind = MountType.BIND if source.startswith("/") else MountType.VOLUME
        out[target] = Mount(kind, target, source, "ro" in mode.split(","))
    for m in host.get("Mounts") or ():
        typed = _MOUNT_TYPES.get(str(m.get("Type")))
        if typed is not None:
            out[m["Target"]] = Mount(typed, m["Target"], m.get("Source", ""), bool(m.get("ReadOnly")))
    for target in host.get("Tmpfs") or {}:
        out[target] = Mount(MountType.TMPFS, target)
    for target in (data.get("Config") or {}).get("Volumes") or {}:
        if target not in out and target not in image_volumes:
            out[target] = Mount(MountType.VOLUME, target)  # anonymous
    return tuple(out[t] for t in sorted(out))


def _ports(host: Mapping[str, Any]) -> tuple[PortBinding, ...]:
    out = []
    for key, bound in (host.get("PortBindings") or {}).items():
        port, _, proto = key.partition("/")
        for b in bound or ():
            published = b.get("HostPort") or ""
            out.append(
                PortBinding(
                    int(port),
                    int(published) if published.isdigit() else None,
                    b.get("HostIp") or "",
                    proto or "tcp",
                )
            )
    return tuple(sorted(out, key=lambda p: (p.container_port, p.protocol, p.host_ip, p.host_port or 0)))


def _restart(policy: Mapping[str, Any]) -> str:
    name = policy.get("Name") or "no"
    count = policy.get("MaximumRetryCount") or 0
    return f"{name}:{count}" if name == "on-failure" and count else name


def _generated(hostname: str | None, containers: Mapping[str, str]) -> bool:
    """The daemon's hostname: the short ID of the container or, with `network_mode: service:x`,
    of the container whose namespaces it joined."""
    return not hostname or (any(cid.startswith(hostname) for cid in containers) and len(hostname) == 12)


def _unless_image(value: Any, image_value: Any) -> Any:
    return None if not value or value == image_value else value


def read_back(
    data: Mapping[str, Any], image: Mapping[str, Any], services: Mapping[str, str]
) -> ContainerSpec:
    """The spec that would make the container `data` (an inspect answer) from `image` (the image's
    inspect `Config`); `services` maps container IDs of the project to their service names, to
    turn `container:<id>` back into `service:<name>`."""
    config = data.get("Config") or {}
    host = data.get("HostConfig") or {}
    cid = str(data.get("Id", ""))
    name = str(data.get("Name", "")).lstrip("/")
    image_env = set(image.get("Env") or ())
    image_labels = image.get("Labels") or {}
    entrypoint = _unless_image(config.get("Entrypoint"), image.get("Entrypoint"))
    command = config.get("Cmd")
    if entrypoint is None and command == image.get("Cmd"):
        command = None
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    mode = host.get("NetworkMode") or ""
    if mode in networks or mode in ("default", ""):
        mode = None
    elif mode.startswith("container:"):
        target = mode.removeprefix("container:")
        found = next((s for c, s in services.items() if c.startswith(target) or target.startswith(c)), None)
        mode = f"service:{found}" if found else mode
    short = cid[:12]
    own = config.get("Labels") or {}
    replica = "-".join(
        own.get(k, "") for k in (lbl.COMPOSE_PROJECT, lbl.COMPOSE_SERVICE, lbl.COMPOSE_CONTAINER_NUMBER)
    )
    implicit = (short, name, replica, config.get("Hostname"))
    attachments = tuple(
        NetworkAttachment(
            network=net,
            aliases=tuple(sorted(a for a in (ep.get("Aliases") or ()) if a not in implicit)),
            ipv4_address=((ep.get("IPAMConfig") or {}).get("IPv4Address")) or None,
            ipv6_address=((ep.get("IPAMConfig") or {}).get("IPv6Address")) or None,
        )
        for net, ep in sorted(networks.items())
        if mode is None
    )
    memory = host.get("Memory") or None
    nano = host.get("NanoCpus") or None
    return ContainerSpec(
        name=name,
        image=str(config.get("Image") or ""),
        labels={
            k: v
            for k, v in (config.get("Labels") or {}).items()
            if not k.startswith(_OWN_PREFIXES) and image_labels.get(k) != v
        },
        command=tuple(command) if command is not None else None,
        entrypoint=tuple(entrypoint) if entrypoint is not None else None,
        environment=dict(e.partition("=")[::2] for e in config.get("Env") or () if e not in image_env),
        working_dir=_unless_image(config.get("WorkingDir"), image.get("WorkingDir")),
        user=_unless_image(config.get("User"), image.get("User")),
        hostname=None if _generated(config.get("Hostname"), services) else config.get("Hostname"),
        mounts=_mounts(data, image.get("Volumes") or {}),
        ports=_ports(host),
        networks=attachments,
        network_mode=mode,
        limits=Limits(memory, nano / _NS if nano else None, host.get("PidsLimit") or None),
        healthcheck=_healthcheck(config.get("Healthcheck"), image.get("Healthcheck")),
        restart=_restart(host.get("RestartPolicy") or {}),
        init=bool(host.get("Init")),
        tty=bool(config.get("Tty")),
        stdin_open=bool(config.get("OpenStdin")),
        read_only=bool(host.get("ReadonlyRootfs")),
        privileged=bool(host.get("Privileged")),
        cap_add=tuple(sorted(host.get("CapAdd") or ())),
        cap_drop=tuple(sorted(host.get("CapDrop") or ())),
        stop_signal=_unless_image(config.get("StopSignal"), image.get("StopSignal")),
        stop_grace_period_s=float(config.get("StopTimeout") or 10),
        extra_hosts=tuple(sorted(_host_entry(entry) for entry in host.get("ExtraHosts") or ())),
        dns=tuple(host.get("Dns") or ()),
        sysctls=dict(host.get("Sysctls") or {}),
    )


def _host_entry(entry: str) -> tuple[str, str]:
    """Docker's `host:address` (the address may hold colons: IPv6) as a (host, address) pair."""
    name, _, address = str(entry).partition(":")
    return name, address
