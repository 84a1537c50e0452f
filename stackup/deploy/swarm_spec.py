"""One compose service -> the Docker Swarm service spec (docker SDK types), pure.

Names follow `docker stack deploy`, so `docker stack ls/ps/rm` see a stackup stack as their own:
services, networks, secrets and configs are `<project>_<name>` and carry the label
`com.docker.stack.namespace=<project>`. Each service joins its networks with its compose name as
an alias, which is how tasks reach `web` by name. Swarm has no start order, so `depends_on` is
reported, as is every key Swarm cannot express. A one-shot service another one waits for
(`service_completed_successfully`) becomes a Swarm job: it runs to completion, retried on failure,
next to its dependents, which must retry until its work is done (Swarm cannot gate them).

Without the routing mesh (`SwarmOptions.routing_mesh=False`, for nodes whose kernel has no IPVS,
which the mesh's ingress ports and virtual IPs need) services resolve by DNS round robin
(`endpoint_mode: dnsrr`) and ports are published in host mode on the node running the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docker import types  # type: ignore[import-untyped]

from stackup.deploy.notes import Notes
from stackup.spec.kinds import DependsCondition
from stackup.spec.models import Healthcheck, PortMode, Project, Service, VolumeType

NAMESPACE_LABEL = "com.docker.stack.namespace"
MANAGED_LABEL = "app.kubernetes.io/managed-by"  # the same ownership mark as on Kubernetes

MAPPED = frozenset({
    "image", "command", "entrypoint", "environment", "env_file", "ports", "volumes", "tmpfs", "configs",
    "secrets", "healthcheck", "scale", "deploy", "mem_limit", "mem_reservation", "cpus", "working_dir",
    "user", "read_only", "cap_add", "cap_drop", "tty", "stdin_open", "networks", "hostname", "extra_hosts",
    "dns", "dns_search", "dns_opt", "labels", "stop_grace_period", "stop_signal", "sysctls", "init",
    "group_add", "extensions", "profiles", "expose", "restart", "depends_on",
})


JOB_MODES = frozenset({"replicated-job", "global-job"})


def stack_labels(project: str) -> dict[str, str]:
    return {NAMESPACE_LABEL: project, MANAGED_LABEL: "stackup"}


@dataclass(frozen=True)
class SwarmOptions:
    """How the stack meets the swarm. `routing_mesh=False`: dnsrr endpoints and host-mode ports,
    for nodes without IPVS (the mesh's ingress ports and virtual IPs need the kernel's ip_vs)."""

    routing_mesh: bool = True


def jobs(project: Project) -> frozenset[str]:
    """Services Swarm runs as jobs: `deploy.mode: *-job`, and every service another one waits
    for with `service_completed_successfully` (a one-shot: restarted forever it would never be done)."""
    named = {n for n, s in project.services.items() if s.deploy and s.deploy.mode in JOB_MODES}
    awaited = {dep for s in project.services.values() for dep, edge in s.depends_on.items()
               if edge.condition is DependsCondition.COMPLETED_SUCCESSFULLY}
    return frozenset(named | (awaited & set(project.services)))


@dataclass(frozen=True)
class Refs:
    """Swarm ids the service spec points at, resolved by the caller (networks, secrets, configs)."""

    networks: Mapping[str, str]
    secrets: Mapping[str, tuple[str, str]]
    configs: Mapping[str, tuple[str, str]]


def check_service(notes: Notes, name: str, service: Service, jobs: frozenset[str] = frozenset()) -> None:
    path = ("services", name)
    for key in sorted(service.model_fields_set - MAPPED - {"build"}):
        notes.unmapped((*path, key))
    for dep, edge in service.depends_on.items():
        if edge.condition is DependsCondition.COMPLETED_SUCCESSFULLY and dep in jobs:
            notes.add((*path, "depends_on", dep),
                      f"Swarm has no start order: {dep} runs as a job (until it succeeds) while {name} "
                      f"starts at once; {name} must retry until the job's work is done")
        else:
            notes.add((*path, "depends_on", dep), "Swarm has no start order; left out")
    if service.image is None:
        notes.add((*path, "build"), "Swarm builds nothing: it runs the local name (PROJECT-SERVICE), which "
                                    "every node must have; set `image:` (and push it)")


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


def _ports(name: str, service: Service, options: SwarmOptions, notes: Notes) -> list[dict[str, Any]]:
    out = []
    for i, port in enumerate(service.ports):
        mode = port.mode.value if options.routing_mesh else PortMode.HOST.value
        if port.host_ip:
            notes.add(("services", name, "ports", i),
                      f"Swarm publishes on every address of the node; host_ip {port.host_ip} left out")
        entry: dict[str, Any] = {"TargetPort": port.target, "Protocol": port.protocol.value,
                                 "PublishMode": mode}
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


def _restart(name: str, service: Service, job: bool, notes: Notes) -> Any:
    """A job is retried on failure unless the file says otherwise; `any` would rerun it forever."""
    policy = service.deploy.restart_policy if service.deploy else None
    condition: str | None = None
    if policy is not None:
        condition, attempts = policy.condition or ("on-failure" if job else "any"), policy.max_attempts
    elif service.restart is not None:
        kind = service.restart.kind.value
        condition = {"no": "none", "on-failure": "on-failure"}.get(kind, "any")
        attempts = service.restart.max_retries
    elif job:
        condition, attempts = "on-failure", None
    if condition is None:
        return None
    if job and condition == "any":
        where = ("deploy", "restart_policy", "condition") if policy else ("restart",)
        notes.add(("services", name, *where), "a Swarm job is not restarted after it succeeds; on-failure")
        condition = "on-failure"
    delay = _nanos(policy.delay) if policy else None
    window = _nanos(policy.window) if policy else None
    return types.RestartPolicy(condition=condition, delay=delay or 0, max_attempts=attempts or 0,
                               window=window or 0)


def _mode(service: Service, job: bool) -> Any:
    deploy_mode = service.deploy.mode if service.deploy else None
    if deploy_mode in ("global", "global-job"):
        return types.ServiceMode("global-job" if job else "global")
    return types.ServiceMode("replicated-job" if job else "replicated", service.replicas)


def service_spec(project: str, name: str, service: Service, *, env: dict[str, str], refs: Refs,
                 volumes: Mapping[str, str], notes: Notes, job: bool = False,
                 options: SwarmOptions = SwarmOptions()) -> dict[str, Any]:
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
    template = types.TaskTemplate(container, resources=_resources(service),
                                  restart_policy=_restart(name, service, job, notes),
                                  placement=placement, networks=networks or None)
    endpoint_mode = deploy.endpoint_mode if deploy else None
    if not options.routing_mesh:
        if endpoint_mode not in (None, "dnsrr"):
            notes.add(("services", name, "deploy", "endpoint_mode"),
                      f"without the routing mesh there are no virtual IPs; dnsrr, not {endpoint_mode}")
        endpoint_mode = "dnsrr"
    endpoint = types.EndpointSpec(mode=endpoint_mode, ports=_ports(name, service, options, notes) or None)
    update, rollback = (deploy.update_config, deploy.rollback_config) if deploy else (None, None)
    if job:
        for key, value in (("update_config", update), ("rollback_config", rollback)):
            if value is not None:
                notes.add(("services", name, "deploy", key), "a Swarm job is rerun, not rolled; left out")
        update = rollback = None
    return {
        "task_template": template,
        "name": f"{project}_{name}",
        "labels": {**stack_labels(project), **(deploy.labels if deploy else {})},
        "mode": _mode(service, job),
        "update_config": _update(update),
        "rollback_config": _update(rollback),
        "endpoint_spec": endpoint,
    }
