"""Service + replica number -> the `ContainerSpec` a runtime creates.

A translation, not a decision: every value comes from the service or from the project's naming
rules, so `reconcile` can put the finished spec into the plan and `execute` passes it on untouched.
Naming follows Compose v2 (`<project>-<service>-<n>`, networks and volumes `<project>_<key>`) so
users moving a stack over find the names they expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, assert_never

from stackup.runtime.base import (
    ContainerSpec,
    HealthcheckSpec,
    HookSpec,
    Limits,
    Mount,
    MountType,
    NetworkAttachment,
    PortBinding,
)
from stackup.spec.dotenv import parse_dotenv
from stackup.spec.models import VolumeType

if TYPE_CHECKING:
    from stackup.spec.models import Healthcheck, Project, Service, ServiceHook

DEFAULT_NETWORK = "default"


def container_name(project: Project, service_name: str, number: int) -> str:
    service = project.services.get(service_name)
    if service is not None and service.container_name:
        return service.container_name
    return f"{project.name}-{service_name}-{number}"


def network_name(project: Project, key: str) -> str:
    """Engine-side name of the stack network `key` (`name:` wins, else `<project>_<key>`)."""
    net = project.networks.get(key)
    return net.name if net is not None and net.name else f"{project.name}_{key}"


def volume_name(project: Project, key: str) -> str:
    vol = project.volumes.get(key)
    return vol.name if vol is not None and vol.name else f"{project.name}_{key}"


def image_ref(project: Project, service_name: str, service: Service) -> str:
    """The image a service runs; a build-only service gets Compose's `<project>-<service>` tag."""
    return service.image or f"{project.name}-{service_name}"


def service_networks(service: Service) -> list[str]:
    """Network keys a service joins: its own list, else `default` (unless `network_mode` is set)."""
    if service.networks:
        return sorted(service.networks)
    return [] if service.network_mode else [DEFAULT_NETWORK]


def service_volume_keys(project: Project, service: Service) -> list[str]:
    """Top-level named volumes the service mounts (anonymous volumes and binds are not resources)."""
    keys = {v.source for v in service.volumes if v.type is VolumeType.VOLUME and v.source}
    return sorted(k for k in keys if k in project.volumes)


def container_spec(
    project: Project,
    service_name: str,
    service: Service,
    number: int,
    *,
    labels: Mapping[str, str],
    referenced_files: Mapping[str, bytes],
) -> ContainerSpec:
    """The full create request for replica `number` of `service_name`."""
    all_labels = {**service.labels, **labels}
    return ContainerSpec(
        name=container_name(project, service_name, number),
        image=image_ref(project, service_name, service),
        labels=all_labels,
        command=tuple(service.command) if service.command is not None else None,
        entrypoint=tuple(service.entrypoint) if service.entrypoint is not None else None,
        environment=environment(service, referenced_files),
        working_dir=service.working_dir,
        user=service.user,
        hostname=service.hostname,
        mounts=_mounts(project, service),
        ports=tuple(_ports(service)),
        networks=tuple(_attachments(project, service_name, service)),
        network_mode=service.network_mode,
        limits=_limits(service),
        healthcheck=_healthcheck(service.healthcheck),
        restart=str(service.restart) if service.restart is not None else "no",
        init=bool(service.init),
        tty=service.tty,
        stdin_open=service.stdin_open,
        read_only=service.read_only,
        privileged=service.privileged,
        cap_add=tuple(service.cap_add),
        cap_drop=tuple(service.cap_drop),
        stop_signal=service.stop_signal,
        stop_grace_period_s=service.stop_grace_period.seconds if service.stop_grace_period else 10.0,
        extra_hosts=tuple((host, ip) for host, ips in sorted(service.extra_hosts.items()) for ip in ips),
        devices=tuple((d.source, d.target or d.source, d.permissions or "rwm") for d in service.devices),
        security_opt=tuple(service.security_opt),
        dns=tuple(service.dns),
        sysctls=dict(service.sysctls),
        post_start=_hooks(service.post_start),
        pre_stop=_hooks(service.pre_stop),
        log_driver=service.logging.driver if service.logging else None,
        log_options=_log_options(service),
    )


def _log_options(service: Service) -> dict[str, str]:
    """`logging.options` as text (`max-file: 3` may be written as a number); unset ones dropped."""
    options = service.logging.options if service.logging else {}
    return {key: str(value) for key, value in options.items() if value is not None}


def _hooks(hooks: list[ServiceHook]) -> tuple[HookSpec, ...]:
    """Compose's service hooks; a hook without a command runs nothing, so it is dropped (an
    unresolved `KEY` in its environment is omitted, as for the service's own environment)."""
    return tuple(
        HookSpec(
            command=tuple(hook.command),
            user=hook.user,
            privileged=hook.privileged,
            working_dir=hook.working_dir,
            environment={k: v for k, v in hook.environment.items() if v is not None},
        )
        for hook in hooks
        if hook.command
    )


def environment(service: Service, referenced_files: Mapping[str, bytes]) -> dict[str, str]:
    """env_file contents in order (later files win), then `environment` on top, as Compose merges.

    A `KEY` with no value (None) was left unresolved by the loader and is omitted, as Docker does.
    """
    out: dict[str, str] = {}
    for env_file in service.env_file:
        content = referenced_files.get(env_file.path)
        if content is not None:
            out.update(parse_dotenv(content.decode(), filename=env_file.path))
    out.update({k: v for k, v in service.environment.items() if v is not None})
    return out


def _mounts(project: Project, service: Service) -> tuple[Mount, ...]:
    out: list[Mount] = []
    for v in service.volumes:
        target = v.target or ""
        match v.type:
            case VolumeType.VOLUME:
                source = volume_name(project, v.source) if v.source in project.volumes else (v.source or "")
                out.append(Mount(MountType.VOLUME, target, source, v.read_only))
            case VolumeType.BIND:
                out.append(Mount(MountType.BIND, target, v.source or "", v.read_only))
            case VolumeType.TMPFS:
                out.append(Mount(MountType.TMPFS, target))
            case VolumeType.NPIPE | VolumeType.CLUSTER | VolumeType.IMAGE:
                pass  # not expressible on this engine (Windows, Swarm, image mounts)
            case _:
                assert_never(v.type)
    out.extend(Mount(MountType.TMPFS, t.split(":", 1)[0]) for t in service.tmpfs)
    out.extend(_file_mounts(project, service))
    return tuple(out)


def _file_mounts(project: Project, service: Service) -> list[Mount]:
    """File-based `secrets` (at /run/secrets/NAME) and `configs` (at /NAME) bound read-only, as
    Compose does outside Swarm. Secrets from the environment and inline configs have no file to
    bind; the loader warns about them."""
    out: list[Mount] = []
    for ref in service.secrets:
        secret = project.secrets.get(ref.source)
        if secret is not None and secret.file:
            target = ref.target or ref.source
            out.append(Mount(MountType.BIND, target if target.startswith("/") else f"/run/secrets/{target}",
                             secret.file, read_only=True))
    for ref in service.configs:
        config = project.configs.get(ref.source)
        if config is not None and config.file:
            out.append(Mount(MountType.BIND, ref.target or f"/{ref.source}", config.file, read_only=True))
    return out


def _ports(service: Service) -> list[PortBinding]:
    out = []
    for p in service.ports:
        published = (p.published or "").split("-", 1)[0]
        out.append(
            PortBinding(
                container_port=p.target,
                host_port=int(published) if published.isdigit() else None,
                host_ip=p.host_ip or "",
                protocol=str(p.protocol),
            )
        )
    return out


def _attachments(project: Project, service_name: str, service: Service) -> list[NetworkAttachment]:
    out = []
    for key in service_networks(service):
        cfg = service.networks.get(key)
        aliases = (service_name, *(cfg.aliases if cfg else ()))
        out.append(
            NetworkAttachment(
                network=network_name(project, key),
                aliases=tuple(dict.fromkeys(aliases)),
                ipv4_address=cfg.ipv4_address if cfg else None,
                ipv6_address=cfg.ipv6_address if cfg else None,
            )
        )
    return out


def _limits(service: Service) -> Limits:
    limit = service.deploy.resources.limits if service.deploy and service.deploy.resources else None
    return Limits(
        memory_bytes=service.mem_limit or (limit.memory if limit else None),
        cpus=service.cpus or (limit.cpus if limit else None),
        pids=service.pids_limit or (limit.pids if limit else None),
    )


def _healthcheck(check: Healthcheck | None) -> HealthcheckSpec | None:
    """The service's check as written: unset fields stay unset so the image's HEALTHCHECK fills
    them; `disable: true` (or test `NONE`) becomes test `NONE`, which disables the image's too."""
    if check is None:
        return None
    if check.disable or check.test[:1] == ["NONE"]:
        return HealthcheckSpec(test=("NONE",))
    return HealthcheckSpec(
        test=tuple(check.test),
        interval_s=check.interval.seconds if check.interval is not None else None,
        timeout_s=check.timeout.seconds if check.timeout is not None else None,
        retries=check.retries,
        start_period_s=check.start_period.seconds if check.start_period is not None else None,
        start_interval_s=check.start_interval.seconds if check.start_interval is not None else None,
    )
