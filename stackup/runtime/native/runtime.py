"""The planner's `Runtime` over the native engine (`stackupd`), through `EngineClient`.

A translation layer only: `ContainerSpec` (what the planner wants) becomes a `ContainerCreate`
request (what the engine speaks) and engine records become `ContainerInfo`s. Decisions stay in
the planner, mechanisms stay in the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackup.errors import NotFound, UsageError
from stackup.runtime.base import (
    BuildProgress,
    BuildSpec,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    Health,
    HealthcheckSpec,
    HealthProbe,
    HookSpec,
    ImageInfo,
    LayerProgress,
    MountType,
    NetworkInfo,
    NetworkSpec,
    PublishedPort,
    TransferProgress,
    TransferState,
    VolumeInfo,
    VolumeSpec,
)
from stackup.runtime.labels import CONTAINER_NUMBER, PROJECT, SERVICE
from stackup.runtime.native.ops import NativeContainerOps
from stackup.runtime.wire.imageconfig import HealthConfig

if TYPE_CHECKING:
    from stackup.runtime.base import Backend
    from stackup.runtime.native.client import EngineClient
    from stackup.runtime.wire.images import ImageRecord, TransferEvent
    from stackup.runtime.wire.records import ContainerRecord

_STATES = {
    "creating": ContainerState.CREATED,
    "created": ContainerState.CREATED,
    "running": ContainerState.RUNNING,
    "exited": ContainerState.EXITED,
    "removing": ContainerState.DEAD,
}


def container_info(record: ContainerRecord) -> ContainerInfo:
    """An engine record as the planner sees it (state, health, last probe output)."""
    health = Health.NONE
    last_probe: str | None = None
    probes: tuple[HealthProbe, ...] = ()
    if record.health:
        health = Health(str(record.health.get("status", "none")))
        log = record.health.get("log") or []
        if log:
            last_probe = str(log[-1].get("output", "")).strip() or None
        probes = tuple(
            HealthProbe(exit_code=int(p.get("exit_code") or 0), output=str(p.get("output", "")),
                        end=_when(p.get("end")))
            for p in log
        )
    state = _STATES[record.status.value]
    network = record.network
    return ContainerInfo(
        id=record.id,
        name=record.name,
        image=record.image,
        labels=dict(record.labels),
        state=state,
        health=health,
        exit_code=record.exit_code,
        image_id=record.image_id or None,
        last_probe=last_probe,
        created=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        ports=tuple(
            PublishedPort(
                container_port=p.container_port, host_port=p.host_port, host_ip=p.host_ip, protocol=p.protocol
            )
            for p in (network.ports if network else ())
        ),
        addresses={e.network: e.address for e in (network.endpoints if network else ())},
        command=tuple(str(arg) for arg in record.config.get("args") or ()),
        health_log=probes,
        restart_count=record.restart_count,
        details=record.model_dump(mode="json"),
    )


def _when(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _nanoseconds(seconds: float | None) -> int:
    """Docker's wire durations; 0 (unset) makes the engine inherit the image's value."""
    return 0 if seconds is None else round(seconds * 1_000_000_000)


def healthcheck_request(check: HealthcheckSpec | None) -> HealthConfig | None:
    """The spec's check in Docker's wire form: unset stays 0, `disable` stays test `NONE`.

    The one translation of a health check on its way to the engine, which merges it with the
    image's and applies Docker's defaults (`engine/supervision/health.py`).
    """
    if check is None:
        return None
    return HealthConfig(
        test=check.test,
        interval=_nanoseconds(check.interval_s),
        timeout=_nanoseconds(check.timeout_s),
        start_period=_nanoseconds(check.start_period_s),
        start_interval=_nanoseconds(check.start_interval_s),
        retries=check.retries or 0,
    )


def hook_request(hook: HookSpec) -> dict[str, Any]:
    """A `post_start` / `pre_stop` hook as the engine's `Hook` body."""
    return {
        "command": list(hook.command),
        "user": hook.user,
        "privileged": hook.privileged,
        "cwd": hook.working_dir,
        "env": dict(hook.environment),
    }


def dns_aliases(spec: ContainerSpec, aliases: tuple[str, ...]) -> list[str]:
    """An attachment's aliases plus Compose's `<project>-<service>-<n>`, which differs from the
    container name when `container_name` is set (the engine adds service, name and hostname)."""
    project, service, number = (spec.labels.get(k) for k in (PROJECT, SERVICE, CONTAINER_NUMBER))
    replica = f"{project}-{service}-{number}" if project and service and number else None
    return list(dict.fromkeys(a for a in (*aliases, replica) if a and a != spec.name))


def network_mode(spec: ContainerSpec) -> str:
    """The engine's `network_mode`; unset means `bridge` on the listed networks. `service:x`
    must have been resolved to `container:<id>` by the runtime before this is called."""
    mode = spec.network_mode or "bridge"
    if mode.startswith("service:"):
        raise ValueError(f"{spec.name}: network_mode {mode} must be resolved to a container first")
    return mode


def security_options(opts: tuple[str, ...]) -> dict[str, Any]:
    """`security_opt` as the engine's options. A seccomp profile file is read here, on the client,
    as Docker's CLI does; `apparmor=` and `label=` have nothing to apply to on this engine."""
    out: dict[str, Any] = {}
    for opt in opts:
        key, sep, value = opt.partition("=") if "=" in opt else opt.partition(":")
        if key == "no-new-privileges":
            out["no_new_privileges"] = not sep or value.lower() == "true"
        elif key == "seccomp" and value == "unconfined":
            out["seccomp"] = "unconfined"
        elif key == "seccomp" and value:
            try:
                text = Path(value).read_text()
                json.loads(text)
            except (OSError, ValueError) as exc:
                raise UsageError(f"security_opt {opt}: cannot read the seccomp profile: {exc}") from None
            out["seccomp"] = text
        elif key not in ("apparmor", "label"):
            raise UsageError(f"security_opt {opt}: not supported (no-new-privileges, seccomp=...)")
    return out


def create_request(spec: ContainerSpec) -> dict[str, Any]:
    """The engine's `ContainerCreate` body for a planner spec (a plain dict: the API validates)."""
    mounts: list[dict[str, Any]] = []
    for m in spec.mounts:
        entry: dict[str, Any] = {"kind": m.type.value, "target": m.target, "read_only": m.read_only}
        if m.type is not MountType.TMPFS:
            entry["source"] = m.source
        mounts.append(entry)
    options: dict[str, Any] = {
        "tty": spec.tty,
        "stdin_open": spec.stdin_open,
        "read_only": spec.read_only,
        "privileged": spec.privileged,
        "cap_add": list(spec.cap_add),
        "cap_drop": list(spec.cap_drop),
        "sysctls": dict(spec.sysctls),
        "init": spec.init,
        "stop_grace_period": spec.stop_grace_period_s,
        "dns": list(spec.dns),
        "extra_hosts": [{"hostname": host, "address": address} for host, address in spec.extra_hosts],
        "devices": [{"source": s, "target": d, "permissions": p} for s, d, p in spec.devices],
        **security_options(spec.security_opt),
    }
    if spec.stop_signal:
        options["stop_signal"] = spec.stop_signal
    if spec.log_driver:
        options["log_driver"] = spec.log_driver
    if spec.log_options:
        options["log_options"] = dict(spec.log_options)
    if spec.limits.memory_bytes:
        options["memory"] = spec.limits.memory_bytes
    if spec.limits.cpus:
        options["cpus"] = spec.limits.cpus
    if spec.limits.pids:
        options["pids_limit"] = spec.limits.pids
    body: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "labels": dict(spec.labels),
        "command": list(spec.command) if spec.command is not None else None,
        "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "env": dict(spec.environment),
        "cwd": spec.working_dir,
        "user": spec.user,
        "mounts": mounts,
        "hostname": spec.hostname,
        "network_mode": network_mode(spec),
        "networks": [
            {"network": a.network, "aliases": dns_aliases(spec, a.aliases), "ipv4_address": a.ipv4_address}
            for a in spec.networks
        ],
        "ports": [
            {
                "container_port": p.container_port,
                "host_port": p.host_port,
                "host_ip": p.host_ip,
                "protocol": p.protocol,
            }
            for p in spec.ports
        ],
        "restart": spec.restart,
        "healthcheck": healthcheck_request(spec.healthcheck),
        "hooks": {
            "post_start": [hook_request(h) for h in spec.post_start],
            "pre_stop": [hook_request(h) for h in spec.pre_stop],
        },
        "options": options,
    }
    return body


class NativeRuntime(NativeContainerOps):
    """`Backend` implementation backed by the native engine's HTTP API (the container
    operations are in `NativeContainerOps`)."""

    name = "native"

    def __init__(self, client: EngineClient, *, stop_timeout_s: float | None = None) -> None:
        self.client = client
        self.stop_timeout_s = stop_timeout_s
        """Overrides each container's grace period when set (`down -t`, `stop -t`)."""

    def close(self) -> None:
        self.client.close()

    def project_lock(
        self,
        project: str,
        *,
        holder: str = "",
        timeout_s: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> AbstractContextManager[None]:
        """The engine's per-project lock, held by a connection of its own (see `projectlocks`)."""
        return self.client.project_lock(project, holder=holder, timeout_s=timeout_s, on_wait=on_wait)

    # -- containers -----------------------------------------------------------------------

    def list_containers(self, project: str) -> list[ContainerInfo]:
        records = self.client.list_containers(labels={PROJECT: project or None})  # '': every project's
        return [container_info(r) for r in records]

    def inspect_container(self, container_id: str) -> ContainerInfo:
        return container_info(self.client.inspect_container(container_id))

    def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        from stackup.runtime.wire.models import ContainerCreate

        if spec.network_mode and spec.network_mode.startswith("service:"):
            target = self._service_container(spec, spec.network_mode.removeprefix("service:"))
            spec = replace(spec, network_mode=f"container:{target}")
        request = ContainerCreate.model_validate(create_request(spec))
        return container_info(self.client.create_container(request))

    def _service_container(self, spec: ContainerSpec, service: str) -> str:
        """`network_mode: service:x`: the id of x's container in the same project (a running one
        first; the planner orders x before this service, so one exists)."""
        found = self.client.list_containers(labels={PROJECT: spec.labels.get(PROJECT, ""), SERVICE: service})
        found.sort(key=lambda r: (r.status.value != "running", r.number or 0))
        if not found:
            raise NotFound(f"{spec.name}: network_mode service:{service}: service {service} has no container")
        return found[0].id

    def start_container(self, container_id: str) -> None:
        self.client.start_container(container_id)

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None:
        self.client.stop_container(container_id, self.stop_timeout_s if timeout_s is None else timeout_s)

    def remove_container(self, container_id: str) -> None:
        self.client.remove_container(container_id, force=True)

    # -- networks -------------------------------------------------------------------------

    def list_networks(self) -> list[NetworkInfo]:
        return [
            NetworkInfo(name=n.name, id=n.name, labels=dict(n.labels)) for n in self.client.list_networks()
        ]

    def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        """Create a stack network (the planner never creates `external` ones, see
        `planner.resources`); IPv6 and non-bridge drivers are refused by the engine."""
        if spec.enable_ipv6:
            from stackup.errors import PlanError

            raise PlanError(f"network {spec.name}: enable_ipv6 is not supported by the native engine")
        record = self.client.create_network(
            spec.name, labels=dict(spec.labels), internal=spec.internal, subnets=list(spec.subnets)
        )
        return NetworkInfo(name=record.name, id=record.name, labels=dict(record.labels))

    def remove_network(self, name: str) -> None:
        self.client.remove_network(name)

    # -- volumes --------------------------------------------------------------------------

    def list_volumes(self) -> list[VolumeInfo]:
        return [VolumeInfo(name=v.name, labels=dict(v.labels)) for v in self.client.list_volumes()]

    def create_volume(self, spec: VolumeSpec) -> VolumeInfo:
        record = self.client.create_volume(spec.name, labels=spec.labels, driver=spec.driver)
        return VolumeInfo(name=record.name, labels=dict(record.labels))

    def remove_volume(self, name: str) -> None:
        self.client.remove_volume(name)

    # -- images ---------------------------------------------------------------------------

    def list_images(self) -> list[ImageInfo]:
        return [_image_info(i) for i in self.client.list_images()]

    def pull_image(self, ref: str, *, platform: str | None = None,
                   progress: TransferProgress | None = None) -> ImageInfo:
        """Pull through the engine, which streams layer progress back (see `wire.images`)."""
        from stackup.runtime.native.credentials import credentials_for

        record = self.client.pull_image(ref, platform=platform, auth=credentials_for(ref),
                                        progress=_progress(ref, progress))
        return _image_info(record)

    def push_image(self, ref: str, *, progress: TransferProgress | None = None) -> str:
        from stackup.runtime.native.credentials import credentials_for

        return self.client.push_image(ref, auth=credentials_for(ref), progress=_progress(ref, progress))

    def tag_image(self, ref: str, target: str) -> ImageInfo:
        return _image_info(self.client.tag_image(ref, target))

    def build_image(self, spec: BuildSpec, progress: BuildProgress | None = None) -> ImageInfo:
        """Build on the engine (`POST /build`). A failure raises `BuildFailed` located at the step
        and its Dockerfile line with the step's output tail; the old image keeps its tag."""
        from stackup.runtime.native.build import build_on_engine

        image = build_on_engine(self.client, spec, progress)
        return ImageInfo(id=image.id, refs=tuple(image.refs))

    def remove_image(self, ref: str) -> None:
        self.client.remove_image(ref)

    # -- container images -----------------------------------------------------------------

    def commit_container(self, container_id: str, ref: str | None = None) -> ImageInfo:
        image = self.client.commit_container(container_id, ref)
        return ImageInfo(id=image.id, refs=tuple(image.refs))

    def export_container(self, container_id: str) -> Iterator[bytes]:
        return self.client.export_container(container_id)


def _image_info(record: ImageRecord) -> ImageInfo:
    return ImageInfo(id=record.id, refs=tuple(record.refs), last_pulled=record.last_pulled)


def _progress(ref: str, progress: TransferProgress | None) -> Callable[[TransferEvent], None] | None:
    """Engine transfer events -> the runtime-neutral `LayerProgress`."""
    if progress is None:
        return None

    def forward(event: TransferEvent) -> None:
        if event.state is not None:
            progress(LayerProgress(ref, event.layer, TransferState(event.state.value), event.done,
                                   event.total))

    return forward


if TYPE_CHECKING:
    _: type[Backend] = NativeRuntime  # mypy checks the whole protocol is implemented
