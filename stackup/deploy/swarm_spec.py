"""One compose service -> the Docker Swarm service spec (docker SDK types), pure.

Names follow `docker stack deploy`, so `docker stack ls/ps/rm` see a stackup stack as their own:
services, networks, secrets and configs are `<project>_<name>` and carry the label
`com.docker.stack.namespace=<project>`. Each service joins its networks with its compose name as
an alias, which is how tasks reach `web` by name. Swarm has no start order, so `depends_on` is
reported, as is every key Swarm cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docker import types  # type: ignore[import-untyped]

from stackup.deploy.notes import Notes
from stackup.spec.models import Healthcheck, Service, VolumeType

NAMESPACE_LABEL = "com.docker.stack.namespace"
MANAGED_LABEL = "app.kubernetes.io/managed-by"  # the same ownership mark as on Kubernetes

MAPPED = frozenset({
    "image", "command", "entrypoint", "environment", "env_file", "ports", "volumes", "tmpfs", "configs",
    "secrets", "healthcheck", "scale", "deploy", "mem_limit", "mem_reservation", "cpus", "working_dir",
    "user", "read_only", "cap_add", "cap_drop", "tty", "stdin_open", "networks", "hostname", "extra_hosts",
    "dns", "dns_search", "dns_opt", "labels", "stop_grace_period", "stop_signal", "sysctls", "init",
    "group_add", "extensions", "profiles", "expose", "restart", "depends_on",
})


def stack_labels(project: str) -> dict[str, str]:
    return {NAMESPACE_LABEL: project, MANAGED_LABEL: "stackup"}


@dataclass(frozen=True)
class Refs:
    """Swarm ids the service spec points at, resolved by the caller (networks, secrets, configs)."""

    networks: Mapping[str, str]
    secrets: Mapping[str, tuple[str, str]]
    configs: Mapping[str, tuple[str, str]]


def check_service(notes: Notes, name: str, service: Service) -> None:
    path = ("services", name)
    for key in sorted(service.model_fields_set - MAPPED):
        notes.unmapped((*path, key))
    for dep in service.depends_on:
        notes.add((*path, "depends_on", dep), "Swarm has no start order; left out")
    if service.image is None:
        notes.add((*path, "build"), "Swarm runs images only: set `image:` (and push it)")


def _nanos(value: int | None) -> int | None:
    return int(value) if value is not None else None


def healthcheck(check: Healthcheck | None) -> Any:
    if check is None:
        return None
    if check.disable:
        return types.Healthcheck(test=["NONE"])
    return types.Healthcheck(test=check.test or None, interval=_nanos(check.interval),
                             timeout=_nanos(check.timeout), retries=check.retries,
                             start_period=_nanos(check.start_period))


def _mounts(project_name: str, name: str, service: Service, volumes: Mapping[str, str],
            notes: Notes) -> list[Any]:
    out = []
    for i, vol in enumerate(service.volumes):
        if vol.type is VolumeType.VOLUME:
            source = volumes.get(vol.source or "", vol.source)
            out.append(types.Mount(vol.target, source, type="volume", read_only=vol.read_only,
                                   labels=stack_labels(project_name) if vol.source in volumes else None))
        elif vol.type is VolumeType.BIND:
            notes.add(("services", name, "volumes", i),
                      f"bind mount of {vol.source}: the path must exist on every node")
            out.append(types.Mount(vol.target, vol.source, type="bind", read_only=vol.read_only))
        elif vol.type is VolumeType.TMPFS:
            size = vol.tmpfs.size if vol.tmpfs else None
            out.append(types.Mount(vol.target, None, type="tmpfs", tmpfs_size=int(size) if size else None))
        else:
            notes.unmapped(("services", name, "volumes", i), f"{vol.type} mount")
    out.extend(types.Mount(t.split(":", 1)[0], None, type="tmpfs") for t in service.tmpfs)
    return out


def _ports(service: Service) -> list[dict[str, Any]]:
    out = []
    for port in service.ports:
        entry: dict[str, Any] = {"TargetPort": port.target, "Protocol": port.protocol.value,
                                 "PublishMode": port.mode.value}
        if port.published and port.published.isdigit():
            entry["PublishedPort"] = int(port.published)
        out.append(entry)
    return out


def _resources(service: Service) -> Any:
    res = service.deploy.resources if service.deploy else None
    limits = res.limits if res else None
    reservations = res.reservations if res else None
    cpu = service.cpus or (limits.cpus if limits else None)
    mem = service.mem_limit or (limits.memory if limits else None)
    cpu_res = reservations.cpus if reservations else None
    mem_res = service.mem_reservation or (reservations.memory if reservations else None)
    if not any((cpu, mem, cpu_res, mem_res)):
        return None
    return types.Resources(cpu_limit=int(cpu * 1e9) if cpu else None, mem_limit=int(mem) if mem else None,
                           cpu_reservation=int(cpu_res * 1e9) if cpu_res else None,
                           mem_reservation=int(mem_res) if mem_res else None)


def _update(config: Any) -> Any:
    if config is None:
        return None
    return types.UpdateConfig(parallelism=config.parallelism or 0, delay=_nanos(config.delay),
                              failure_action=config.failure_action or "pause", monitor=_nanos(config.monitor),
                              max_failure_ratio=config.max_failure_ratio,
                              order=config.order.value if config.order else None)


def _restart(service: Service) -> Any:
    policy = service.deploy.restart_policy if service.deploy else None
    if policy is not None:
        return types.RestartPolicy(condition=policy.condition or "any", delay=_nanos(policy.delay) or 0,
                                   max_attempts=policy.max_attempts or 0, window=_nanos(policy.window) or 0)
    if service.restart is not None:
        condition = {"no": "none", "on-failure": "on-failure"}.get(service.restart.kind.value, "any")
        return types.RestartPolicy(condition=condition, max_attempts=service.restart.max_retries or 0)
    return None


def service_spec(project: str, name: str, service: Service, *, env: dict[str, str], refs: Refs,
                 volumes: Mapping[str, str], notes: Notes) -> dict[str, Any]:
    """Keyword arguments for `APIClient.create_service` / `update_service`."""
    deploy = service.deploy
    secrets = [types.SecretReference(*refs.secrets[r.source], filename=r.target or r.source,
                                     uid=r.uid, gid=r.gid, mode=int(r.mode) if r.mode is not None else 0o444)
               for r in service.secrets if r.source in refs.secrets]
    configs = [types.ConfigReference(*refs.configs[r.source], filename=r.target or f"/{r.source}",
                                     uid=r.uid, gid=r.gid, mode=int(r.mode) if r.mode is not None else 0o444)
               for r in service.configs if r.source in refs.configs]
    dns = None
    if service.dns or service.dns_search or service.dns_opt:
        dns = types.DNSConfig(nameservers=service.dns or None, search=service.dns_search or None,
                              options=service.dns_opt or None)
    container = types.ContainerSpec(
        image=service.image or f"{project}-{name}", command=service.entrypoint, args=service.command,
        hostname=service.hostname, env=[f"{k}={v}" for k, v in env.items()] or None,
        workdir=service.working_dir, user=service.user, labels={**service.labels, **stack_labels(project)},
        mounts=_mounts(project, name, service, volumes, notes) or None,
        stop_grace_period=_nanos(service.stop_grace_period), secrets=secrets or None, tty=service.tty or None,
        groups=[str(g) for g in service.group_add] or None, open_stdin=service.stdin_open or None,
        read_only=service.read_only or None, stop_signal=service.stop_signal,
        healthcheck=healthcheck(service.healthcheck),
        hosts={ip: host for host, ips in service.extra_hosts.items() for ip in ips} or None,
        dns_config=dns, configs=configs or None, init=service.init, cap_add=service.cap_add or None,
        cap_drop=service.cap_drop or None, sysctls=dict(service.sysctls) or None,
    )
    networks = [types.NetworkAttachmentConfig(target=refs.networks[net], aliases=[name])
                for net in sorted(service.networks) if net in refs.networks]
    placement = None
    if deploy and deploy.placement:
        placement = types.Placement(constraints=deploy.placement.constraints or None,
                                    preferences=[("spread", p.spread) for p in deploy.placement.preferences
                                                 if p.spread] or None,
                                    maxreplicas=deploy.placement.max_replicas_per_node)
    template = types.TaskTemplate(container, resources=_resources(service), restart_policy=_restart(service),
                                  placement=placement, networks=networks or None)
    global_mode = deploy is not None and deploy.mode == "global"
    mode = types.ServiceMode("global") if global_mode else types.ServiceMode("replicated", service.replicas)
    endpoint_mode = deploy.endpoint_mode if deploy else None
    endpoint = types.EndpointSpec(mode=endpoint_mode, ports=_ports(service) or None)
    return {
        "task_template": template,
        "name": f"{project}_{name}",
        "labels": {**stack_labels(project), **(deploy.labels if deploy else {})},
        "mode": mode,
        "update_config": _update(deploy.update_config if deploy else None),
        "rollback_config": _update(deploy.rollback_config if deploy else None),
        "endpoint_spec": endpoint,
    }
