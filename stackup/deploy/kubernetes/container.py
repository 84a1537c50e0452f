"""One compose service -> one container and the pod volumes its mounts need.

Mapping choices (each also explained in the warning a user sees when it cannot be honoured):
`entrypoint` -> `command` and `command` -> `args` (Kubernetes' names for the same two things);
a published port becomes the container port's `hostPort` (Compose publishes on the node, and
this is what `podman kube play` binds), while discovery goes through a Service; health checks
become readiness and liveness probes; named volumes are PersistentVolumeClaims, anonymous ones
and tmpfs are emptyDirs, bind mounts are hostPaths (the path must exist on the node).
"""

from __future__ import annotations

import math
import posixpath
import re
from typing import Any

from kubernetes import client as k8s  # type: ignore[import-untyped]

from stackup.deploy.kubernetes.context import RenderContext
from stackup.deploy.kubernetes.names import dns_label
from stackup.spec.errors import KeyPath
from stackup.spec.models import FileReference, Healthcheck, Service, VolumeType

_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


def build_container(ctx: RenderContext, name: str, service: Service) -> tuple[Any, list[Any]]:
    """The container for `service` plus the pod volumes its mounts refer to."""
    path: KeyPath = ("services", name)
    image = service.image
    if image is None:
        image = f"{ctx.project.name}-{name}"
        ctx.notes.add((*path, "build"), f"no image: set `image:` to a pushed name (using {image!r})")
    env = ctx.sources.service_env(name, service)
    mounts, volumes = _mounts(ctx, name, service)
    probe = _probe(service.healthcheck)
    container = k8s.V1Container(
        name=dns_label(name),
        image=image,
        command=service.entrypoint or None,
        args=service.command if service.command is not None else None,
        env=[k8s.V1EnvVar(name=k, value=v) for k, v in env.items()] or None,
        ports=_ports(ctx, name, service) or None,
        volume_mounts=mounts or None,
        working_dir=service.working_dir,
        resources=_resources(service),
        readiness_probe=probe,
        liveness_probe=_liveness(probe, service.healthcheck),
        security_context=_security(ctx, name, service),
        tty=service.tty or None,
        stdin=service.stdin_open or None,
        image_pull_policy=_pull_policy(service.pull_policy),
    )
    return container, volumes


def _pull_policy(policy: str | None) -> str | None:
    return {"always": "Always", "never": "Never", "missing": "IfNotPresent",
            "if_not_present": "IfNotPresent"}.get(policy or "")


def _ports(ctx: RenderContext, name: str, service: Service) -> list[Any]:
    out: list[Any] = []
    seen: set[tuple[int, str]] = set()
    for i, port in enumerate(service.ports):
        protocol = port.protocol.value.upper()
        host_port: int | None = None
        if port.published:
            if port.published.isdigit():
                host_port = int(port.published)
            else:
                ctx.notes.add(("services", name, "ports", i), f"published range {port.published} left out")
        if (port.target, protocol) in seen:
            ctx.notes.add(("services", name, "ports", i),
                          f"port {port.target}/{port.protocol} published twice: only the first is kept")
            continue
        seen.add((port.target, protocol))
        port_name = port.name if port.name and _PORT_NAME.match(port.name) else None
        out.append(k8s.V1ContainerPort(container_port=port.target, protocol=protocol, host_port=host_port,
                                       host_ip=port.host_ip if host_port else None, name=port_name))
    return out


def _seconds(value: int | None, default: float) -> int:
    seconds = default if value is None else value / 1e9
    return max(1, math.ceil(seconds))


def _probe(check: Healthcheck | None) -> Any:
    if check is None or check.disable or not check.test or check.test[0] == "NONE":
        return None
    command = check.test[1:] if check.test[0] == "CMD" else ["/bin/sh", "-c", " ".join(check.test[1:])]
    return k8s.V1Probe(
        _exec=k8s.V1ExecAction(command=command),
        period_seconds=_seconds(check.interval, 30),
        timeout_seconds=_seconds(check.timeout, 30),
        failure_threshold=check.retries if check.retries else 3,
    )


def _liveness(readiness: Any, check: Healthcheck | None) -> Any:
    """Liveness is the same check, given the start period before failures count."""
    if readiness is None or check is None:
        return None
    delay = _seconds(check.start_period, 0) if check.start_period else None
    return k8s.V1Probe(_exec=readiness._exec, period_seconds=readiness.period_seconds,
                       timeout_seconds=readiness.timeout_seconds,
                       failure_threshold=readiness.failure_threshold, initial_delay_seconds=delay)


def cpu_quantity(cpus: float) -> str:
    """In the API server's canonical form ("1", not "1000m"), so the plan sees no drift when it
    reads the object back."""
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(size: int) -> str:
    """Canonical as the API server writes quantities back: the largest binary suffix that divides
    the size, else the largest decimal one (1500000 is "1500k")."""
    for unit, factor in (("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30),
                         ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    for unit, power in (("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3)):
        if size % 10**power == 0:
            return f"{size // 10**power}{unit}"
    return str(size)


def _resources(service: Service) -> Any:
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    res = service.deploy.resources if service.deploy else None
    if res and res.limits:
        if res.limits.cpus:
            limits["cpu"] = cpu_quantity(res.limits.cpus)
        if res.limits.memory:
            limits["memory"] = memory_quantity(int(res.limits.memory))
    if res and res.reservations:
        if res.reservations.cpus:
            requests["cpu"] = cpu_quantity(res.reservations.cpus)
        if res.reservations.memory:
            requests["memory"] = memory_quantity(int(res.reservations.memory))
    if service.cpus:
        limits["cpu"] = cpu_quantity(service.cpus)
    if service.mem_limit:
        limits["memory"] = memory_quantity(int(service.mem_limit))
    if service.mem_reservation:
        requests["memory"] = memory_quantity(int(service.mem_reservation))
    if not limits and not requests:
        return None
    return k8s.V1ResourceRequirements(limits=limits or None, requests=requests or None)


def _security(ctx: RenderContext, name: str, service: Service) -> Any:
    fields: dict[str, Any] = {}
    if service.privileged:
        fields["privileged"] = True
    if service.read_only:
        fields["read_only_root_filesystem"] = True
    if service.cap_add or service.cap_drop:
        fields["capabilities"] = k8s.V1Capabilities(add=service.cap_add or None,
                                                    drop=service.cap_drop or None)
    if service.user:
        uid, _, gid = service.user.partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            fields["run_as_user"] = int(uid)
            if gid:
                fields["run_as_group"] = int(gid)
        else:
            ctx.notes.add(("services", name, "user"), "only numeric uid[:gid] maps to runAsUser; left out")
    return k8s.V1SecurityContext(**fields) if fields else None


def _mounts(ctx: RenderContext, name: str, service: Service) -> tuple[list[Any], list[Any]]:
    mounts: list[Any] = []
    volumes: list[Any] = []
    svc = dns_label(name, 40)
    for i, vol in enumerate(service.volumes):
        path: KeyPath = ("services", name, "volumes", i)
        subpath = vol.volume.subpath if vol.volume else None
        volume_name = f"{svc}-m{i}"
        if vol.type is VolumeType.VOLUME and vol.source in ctx.project.volumes:
            top = ctx.project.volumes[vol.source]
            volume_name = f"v-{dns_label(vol.source, 61)}"
            claim = k8s.V1PersistentVolumeClaimVolumeSource(claim_name=dns_label(top.name or vol.source))
            volumes.append(k8s.V1Volume(name=volume_name, persistent_volume_claim=claim))
        elif vol.type is VolumeType.VOLUME:
            volumes.append(k8s.V1Volume(name=volume_name, empty_dir=k8s.V1EmptyDirVolumeSource()))
        elif vol.type is VolumeType.TMPFS:
            size = vol.tmpfs.size if vol.tmpfs else None
            volumes.append(k8s.V1Volume(name=volume_name, empty_dir=k8s.V1EmptyDirVolumeSource(
                medium="Memory", size_limit=memory_quantity(int(size)) if size else None)))
        elif vol.type is VolumeType.BIND:
            ctx.notes.add(path, f"bind mount of {vol.source} becomes a hostPath: "
                                "the path must exist on the node")
            host_path = k8s.V1HostPathVolumeSource(path=vol.source)
            volumes.append(k8s.V1Volume(name=volume_name, host_path=host_path))
        else:
            ctx.notes.unmapped(path, f"{vol.type} mount")
            continue
        mounts.append(k8s.V1VolumeMount(name=volume_name, mount_path=vol.target,
                                        read_only=vol.read_only or None, sub_path=subpath))
    for i, tmpfs in enumerate(service.tmpfs):
        volume_name = f"{svc}-t{i}"
        volumes.append(k8s.V1Volume(name=volume_name, empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory")))
        mounts.append(k8s.V1VolumeMount(name=volume_name, mount_path=tmpfs.split(":", 1)[0]))
    for kind in ("configs", "secrets"):
        refs: list[FileReference] = getattr(service, kind)
        for i, ref in enumerate(refs):
            mount, volume = _file_mount(ctx, name, kind, i, ref)
            if mount is not None:
                mounts.append(mount)
                volumes.append(volume)
    return mounts, volumes


def file_key(source: str) -> str:
    """The ConfigMap/Secret data key holding a config's or secret's content."""
    return re.sub(r"[^-._a-zA-Z0-9]", "-", source)


def _file_mount(ctx: RenderContext, name: str, kind: str, i: int, ref: FileReference) -> tuple[Any, Any]:
    path: KeyPath = ("services", name, kind, i)
    tops = ctx.project.configs if kind == "configs" else ctx.project.secrets
    top = tops.get(ref.source)
    if top is None:
        return None, None
    if ref.uid is not None or ref.gid is not None:
        ctx.notes.add(path, "uid/gid of a mounted file are not settable per file; left out")
    target = ref.target or ("/run/secrets/" + ref.source if kind == "secrets" else "/" + ref.source)
    if not target.startswith("/"):
        target = posixpath.join("/run/secrets" if kind == "secrets" else "/", target)
    object_name = dns_label(top.name or ref.source)
    key = file_key(ref.source)
    volume_name = f"{'c' if kind == 'configs' else 's'}-{dns_label(ref.source, 61)}"
    mode = int(ref.mode) if ref.mode is not None else None
    items = [k8s.V1KeyToPath(key=key, path=key, mode=mode)]
    if kind == "configs":
        source = k8s.V1ConfigMapVolumeSource(name=object_name, items=items)
        volume = k8s.V1Volume(name=volume_name, config_map=source)
    else:
        secret = k8s.V1SecretVolumeSource(secret_name=object_name, items=items)
        volume = k8s.V1Volume(name=volume_name, secret=secret)
    return k8s.V1VolumeMount(name=volume_name, mount_path=target, sub_path=key, read_only=True), volume
