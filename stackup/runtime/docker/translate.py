"""`ContainerSpec` -> the Engine API's create body, and the daemon's answers -> `ContainerInfo`.

Pure functions over plain dicts (the wire form), so each field's translation is testable without
a daemon. Choices, each as Docker Compose makes it:

- binds go in `HostConfig.Binds` (the daemon creates a missing host directory, as Compose's
  `create_host_path`), named and anonymous volumes and tmpfs in `HostConfig.Mounts`;
- the first network is the `NetworkMode` and the only entry of `NetworkingConfig` (API 1.41
  accepts one network at create time); the others are connected before start (`extra_networks`);
- healthcheck durations are nanoseconds and an unset one stays 0, which makes the daemon inherit
  the image's value; `disable` is test `["NONE"]`; `start_interval` needs API 1.44 and is not sent;
- `StopTimeout` is whole seconds (rounded up, so a 0.5s grace period is not 0s).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from stackup.errors import UsageError
from stackup.runtime.base import (
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    Health,
    HealthcheckSpec,
    HealthProbe,
    MountType,
    NetworkAttachment,
    PublishedPort,
)
from stackup.runtime.labels import CONTAINER_NUMBER, PROJECT, SERVICE

_NS = 1_000_000_000


def _ns(seconds: float | None) -> int:
    return 0 if seconds is None else round(seconds * _NS)


def healthcheck(check: HealthcheckSpec | None) -> dict[str, Any] | None:
    """Docker's `Healthcheck`; None (no key) keeps the image's check untouched."""
    if check is None:
        return None
    if check.disabled:
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {
        "Interval": _ns(check.interval_s),
        "Timeout": _ns(check.timeout_s),
        "StartPeriod": _ns(check.start_period_s),
        "Retries": check.retries or 0,
    }
    if check.test:
        out["Test"] = list(check.test)
    return out


def restart_policy(restart: str) -> dict[str, Any]:
    """`no`, `always`, `unless-stopped`, `on-failure[:n]` as Docker's `RestartPolicy`."""
    name, _, count = restart.partition(":")
    if name == "no" or not name:
        return {"Name": ""}
    policy: dict[str, Any] = {"Name": name}
    if name == "on-failure" and count.isdigit():
        policy["MaximumRetryCount"] = int(count)
    return policy


def aliases(spec: ContainerSpec, attachment: NetworkAttachment) -> list[str]:
    """The attachment's aliases plus Compose's `<project>-<service>-<n>` when it is not the name
    (the container name and short ID resolve on user networks anyway)."""
    project, service, number = (spec.labels.get(k) for k in (PROJECT, SERVICE, CONTAINER_NUMBER))
    replica = f"{project}-{service}-{number}" if project and service and number else None
    return list(dict.fromkeys(a for a in (*attachment.aliases, replica) if a and a != spec.name))


def endpoint_config(spec: ContainerSpec, attachment: NetworkAttachment) -> dict[str, Any]:
    """One network's `EndpointSettings` (aliases, fixed addresses)."""
    out: dict[str, Any] = {"Aliases": aliases(spec, attachment)}
    ipam = {
        key: value
        for key, value in (("IPv4Address", attachment.ipv4_address), ("IPv6Address", attachment.ipv6_address))
        if value
    }
    if ipam:
        out["IPAMConfig"] = ipam
    return out


def _mounts(spec: ContainerSpec) -> tuple[list[str], list[dict[str, Any]]]:
    binds: list[str] = []
    mounts: list[dict[str, Any]] = []
    for m in spec.mounts:
        match m.type:
            case MountType.BIND:
                binds.append(f"{m.source}:{m.target}{':ro' if m.read_only else ''}")
            case MountType.VOLUME:
                entry: dict[str, Any] = {"Type": "volume", "Target": m.target, "ReadOnly": m.read_only}
                if m.source:
                    entry["Source"] = m.source
                mounts.append(entry)
            case MountType.TMPFS:
                mounts.append({"Type": "tmpfs", "Target": m.target})
    return binds, mounts


def _ports(spec: ContainerSpec) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in spec.ports:
        key = f"{p.container_port}/{p.protocol}"
        exposed[key] = {}
        host_port = "" if p.host_port is None else str(p.host_port)
        bindings.setdefault(key, []).append({"HostIp": p.host_ip, "HostPort": host_port})
    return exposed, bindings


def create_body(spec: ContainerSpec, labels: Mapping[str, str], network_mode: str | None) -> dict[str, Any]:
    """The `POST /containers/create` body. `network_mode` is the resolved mode (`service:x` already
    turned into `container:<id>`); None means "the first network, or Docker's default bridge"."""
    binds, mounts = _mounts(spec)
    exposed, bindings = _ports(spec)
    first = spec.networks[0] if spec.networks and network_mode is None else None
    host: dict[str, Any] = {
        "Binds": binds,
        "Mounts": mounts,
        "PortBindings": bindings,
        "NetworkMode": network_mode or (first.network if first else "default"),
        "RestartPolicy": restart_policy(spec.restart),
        "ReadonlyRootfs": spec.read_only,
        "Privileged": spec.privileged,
        "CapAdd": list(spec.cap_add) or None,
        "CapDrop": list(spec.cap_drop) or None,
        "ExtraHosts": [f"{host}:{address}" for host, address in spec.extra_hosts] or None,
        "Devices": [
            {"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}
            for src, dst, perms in spec.devices
        ] or None,
        "SecurityOpt": [_security_opt(o) for o in spec.security_opt] or None,
        "Dns": list(spec.dns) or None,
        "Sysctls": dict(spec.sysctls) or None,
    }
    if spec.init:
        host["Init"] = True
    if spec.limits.memory_bytes:
        host["Memory"] = spec.limits.memory_bytes
    if spec.limits.cpus:
        host["NanoCpus"] = round(spec.limits.cpus * _NS)
    if spec.limits.pids:
        host["PidsLimit"] = spec.limits.pids
    if spec.log_driver or spec.log_options:  # the daemon's own default driver otherwise
        host["LogConfig"] = {"Type": spec.log_driver or "json-file", "Config": dict(spec.log_options)}
    body: dict[str, Any] = {
        "Image": spec.image,
        "Labels": dict(labels),
        "Env": [f"{k}={v}" for k, v in spec.environment.items()],
        "Tty": spec.tty,
        "OpenStdin": spec.stdin_open,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "ExposedPorts": exposed,
        "StopTimeout": math.ceil(spec.stop_grace_period_s),
        "HostConfig": host,
    }
    if spec.command is not None:
        body["Cmd"] = list(spec.command)
    if spec.entrypoint is not None:
        body["Entrypoint"] = list(spec.entrypoint)
    for key, value in (
        ("WorkingDir", spec.working_dir),
        ("User", spec.user),
        ("Hostname", spec.hostname),
        ("StopSignal", spec.stop_signal),
    ):
        if value:
            body[key] = value
    check = healthcheck(spec.healthcheck)
    if check is not None:
        body["Healthcheck"] = check
    if first is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": {first.network: endpoint_config(spec, first)}}
    return body


def extra_networks(spec: ContainerSpec, network_mode: str | None) -> list[NetworkAttachment]:
    """Networks to connect after create (all but the first; none with an explicit network mode)."""
    return [] if network_mode is not None else list(spec.networks[1:])


# -- answers -> infos ------------------------------------------------------------------------------

_STATES = {
    **{s.value: s for s in ContainerState},
    "configured": ContainerState.CREATED,  # Podman's names for the same states
    "initialized": ContainerState.CREATED,
    "stopped": ContainerState.EXITED,
    "removing": ContainerState.DEAD,
}
_EXITED = re.compile(r"Exited \((-?\d+)\)")


def _state(value: str) -> ContainerState:
    return _STATES.get(value.lower(), ContainerState.DEAD)


def parse_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 nanosecond times; the zero time (`0001-01-01...`) is None."""
    if not value or value.startswith("0001-"):
        return None
    head, _, frac = value.partition(".")
    zone = "+00:00"
    if frac:
        digits = re.match(r"\d*", frac)
        rest = frac[digits.end() if digits else 0 :]
        zone = "+00:00" if rest in ("Z", "") else rest
        micro = (digits.group(0) if digits else "")[:6].ljust(6, "0")
        text = f"{head}.{micro}{zone}"
    else:
        text = head.removesuffix("Z") + zone if head.endswith("Z") else head
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _list_health(status: str) -> Health:
    if "(healthy)" in status:
        return Health.HEALTHY
    if "(unhealthy)" in status:
        return Health.UNHEALTHY
    if "(health: starting)" in status:
        return Health.STARTING
    return Health.NONE


def from_list(entry: Mapping[str, Any]) -> ContainerInfo:
    """A `GET /containers/json` entry: state, health and exit code come from its Status text, so
    `observe` needs this one call and no inspect per container."""
    status = str(entry.get("Status") or "")
    exited = _EXITED.search(status)
    names = entry.get("Names") or [""]
    networks = ((entry.get("NetworkSettings") or {}).get("Networks")) or {}
    ports = tuple(
        PublishedPort(int(p["PrivatePort"]), int(p["PublicPort"]), p.get("IP", ""), p.get("Type", "tcp"))
        for p in entry.get("Ports") or ()
        if p.get("PublicPort")
    )
    created = entry.get("Created")
    command = str(entry.get("Command") or "")
    return ContainerInfo(
        id=entry["Id"],
        name=str(names[0]).lstrip("/"),
        image=str(entry.get("Image") or ""),
        labels=dict(entry.get("Labels") or {}),
        state=_state(str(entry.get("State") or "")),
        health=_list_health(status),
        exit_code=int(exited.group(1)) if exited else None,
        image_id=entry.get("ImageID") or None,
        created=datetime.fromtimestamp(created).astimezone() if isinstance(created, int) else None,
        ports=ports,
        addresses={k: v.get("IPAddress", "") for k, v in networks.items() if v.get("IPAddress")},
        command=_split(command),
    )


def _split(command: str) -> tuple[str, ...]:
    """The list's `Command` is one shell-quoted string."""
    try:
        return tuple(shlex.split(command))
    except ValueError:
        return tuple(command.split())


def from_inspect(data: Mapping[str, Any]) -> ContainerInfo:
    """A `GET /containers/{id}/json` answer, with the health probes' log and the restart count.

    `details` (what `stackup inspect` prints) is the daemon's own JSON, as `docker inspect` shows
    it, plus the native engine's summary keys (`status`, `pid`, `exit_code`, `restart_count`,
    `health` with `status`, `failing_streak` and `log`), so a script reads either backend alike."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    net = data.get("NetworkSettings") or {}
    health_data = state.get("Health") or {}
    health = Health.NONE
    last_probe: str | None = None
    probes: tuple[HealthProbe, ...] = ()
    if health_data:
        health = {h.value: h for h in Health}.get(str(health_data.get("Status", "none")), Health.NONE)
        log = health_data.get("Log") or []
        probes = tuple(
            HealthProbe(int(p.get("ExitCode", -1)), str(p.get("Output", "")), parse_time(p.get("End")))
            for p in log
        )
        if log:
            last_probe = str(log[-1].get("Output", "")).strip() or None
    status = _state(str(state.get("Status") or ""))
    ports: list[PublishedPort] = []
    for key, bound in (net.get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        ports.extend(
            PublishedPort(int(port), int(b["HostPort"]), b.get("HostIp", ""), proto or "tcp")
            for b in bound or ()
            if b.get("HostPort")
        )
    cmd = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    return ContainerInfo(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        image=str(config.get("Image") or ""),
        labels=dict(config.get("Labels") or {}),
        state=status,
        health=health,
        exit_code=(
            int(state["ExitCode"]) if status in (ContainerState.EXITED, ContainerState.DEAD) else None
        ),
        image_id=data.get("Image") or None,
        last_probe=last_probe,
        created=parse_time(data.get("Created")),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        ports=tuple(ports),
        addresses={k: v["IPAddress"] for k, v in (net.get("Networks") or {}).items() if v.get("IPAddress")},
        command=tuple(cmd),
        health_log=probes,
        restart_count=int(data.get("RestartCount") or 0),
        details={**data, **_summary(data, status, int(data.get("RestartCount") or 0))},
    )


_FINISHED = (ContainerState.EXITED, ContainerState.DEAD)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _summary(data: Mapping[str, Any], status: ContainerState, restarts: int) -> dict[str, Any]:
    """The native engine's record keys for what Docker spells differently (see `from_inspect`)."""
    state = data.get("State") or {}
    health = state.get("Health") or None
    started, finished = parse_time(state.get("StartedAt")), parse_time(state.get("FinishedAt"))
    return {
        "id": data.get("Id"),
        "name": str(data.get("Name") or "").lstrip("/"),
        "created_at": _iso(parse_time(data.get("Created"))),
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "status": status.value,
        "pid": int(state.get("Pid") or 0) or None,
        "exit_code": int(state.get("ExitCode") or 0) if status in _FINISHED else None,
        "restart_count": restarts,
        "health": None if health is None else {
            "status": str(health.get("Status") or ""),
            "failing_streak": int(health.get("FailingStreak") or 0),
            "log": [
                {"start": _iso(parse_time(p.get("Start"))), "end": _iso(parse_time(p.get("End"))),
                 "exit_code": p.get("ExitCode"),
                 "output": p.get("Output", "")}
                for p in health.get("Log") or ()
            ],
        },
    }


def _security_opt(opt: str) -> str:
    """Docker's API takes a seccomp profile's content, not its path (its CLI reads the file)."""
    key, _, value = opt.partition("=")
    if key == "seccomp" and value and value != "unconfined":
        try:
            return f"seccomp={Path(value).read_text()}"
        except OSError as exc:
            raise UsageError(f"security_opt {opt}: cannot read the seccomp profile: {exc}") from None
    return opt
