"""Per service: a Deployment (a StatefulSet when it mounts named volumes) and a Service.

`service_completed_successfully` has one faithful Kubernetes form that needs neither API access
from inside the pod nor a kubectl image: the one-shot service runs as an *init container* of
each dependent pod, and the pod's main container starts only after it exits 0. It is therefore
not rendered as a workload of its own (a Deployment would restart a finished container forever);
`podman kube play` runs init containers the same way. The cost: it runs once per dependent pod.

Podman 4 removes a "once" init container right after it exits and races its own cleanup
("cannot remove container ... as it is running"); the workload therefore carries Podman's
`init.container.type: always` annotation, which also matches Kubernetes (init containers run
again whenever the pod restarts). Kubernetes ignores the annotation.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s  # type: ignore[import-untyped]

from stackup.deploy.kubernetes.container import build_container
from stackup.deploy.kubernetes.context import RenderContext, VolumeWorkload
from stackup.deploy.kubernetes.names import dns_label, network_label, owner_labels, selector
from stackup.spec.kinds import DependsCondition
from stackup.spec.models import Service, VolumeType
from stackup.spec.units import Duration

PODMAN_INIT_TYPE = "io.podman.annotations.init.container.type"


def one_shot_services(ctx: RenderContext) -> set[str]:
    """Services some other service waits on to *complete*: they become init containers."""
    return {
        dep
        for svc in ctx.project.services.values()
        for dep, edge in svc.depends_on.items()
        if edge.condition is DependsCondition.COMPLETED_SUCCESSFULLY and dep in ctx.project.services
    }


def meta(ctx: RenderContext, name: str, service: str | None = None,
         annotations: dict[str, str] | None = None) -> Any:
    labels = owner_labels(ctx.project.name, service)
    return k8s.V1ObjectMeta(name=name, namespace=ctx.namespace, labels=labels,
                            annotations=annotations or None)


def workload(ctx: RenderContext, name: str, service: Service, one_shots: set[str]) -> list[Any]:
    """The workload object (and its Service) for a long-running compose service."""
    container, volumes = build_container(ctx, name, service)
    init_containers: list[Any] = []
    for dep in _init_order(ctx, name, one_shots, set()):
        init, init_volumes = build_container(ctx, dep, ctx.project.services[dep])
        init.readiness_probe = init.liveness_probe = None
        init_containers.append(init)
        volumes.extend(init_volumes)
    note_dependencies(ctx, name, service, one_shots)
    pod_labels = {**owner_labels(ctx.project.name, name), **_network_labels(ctx, name, service)}
    template = k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels=pod_labels, annotations=dict(service.labels) or None),
        spec=_pod_spec(ctx, name, service, (container, init_containers), volumes),
    )
    select = k8s.V1LabelSelector(match_labels=selector(ctx.project.name, name))
    label = dns_label(name)
    deploy_labels = dict(service.deploy.labels) if service.deploy else {}
    if init_containers:
        deploy_labels.setdefault(PODMAN_INIT_TYPE, "always")
    named = [v for v in service.volumes if v.type is VolumeType.VOLUME and v.source in ctx.project.volumes]
    strategy = _strategy(service)
    if named and ctx.volume_workload is VolumeWorkload.DEPLOYMENT:
        strategy = k8s.V1DeploymentStrategy(type="Recreate")
    if named and ctx.volume_workload is VolumeWorkload.STATEFULSET:
        if service.replicas > 1:
            ctx.notes.add(("services", name, "volumes"),
                          f"{service.replicas} replicas share one ReadWriteOnce claim per named volume")
        obj: Any = k8s.V1StatefulSet(
            api_version="apps/v1", kind="StatefulSet", metadata=meta(ctx, label, name, deploy_labels),
            spec=k8s.V1StatefulSetSpec(replicas=service.replicas, selector=select, service_name=label,
                                       template=template),
        )
    else:
        obj = k8s.V1Deployment(
            api_version="apps/v1", kind="Deployment", metadata=meta(ctx, label, name, deploy_labels),
            spec=k8s.V1DeploymentSpec(replicas=service.replicas, selector=select, template=template,
                                      strategy=strategy),
        )
    return [obj, _service(ctx, name, service)]


def _init_order(ctx: RenderContext, name: str, one_shots: set[str], seen: set[str]) -> list[str]:
    """One-shot dependencies of `name`, their own one-shot dependencies first."""
    out: list[str] = []
    for dep, edge in ctx.project.services[name].depends_on.items():
        if dep in one_shots and dep not in seen and edge.condition is DependsCondition.COMPLETED_SUCCESSFULLY:
            seen.add(dep)
            out.extend(_init_order(ctx, dep, one_shots, seen))
            out.append(dep)
    return out


def note_dependencies(ctx: RenderContext, name: str, service: Service, one_shots: set[str]) -> None:
    for dep, edge in service.depends_on.items():
        path = ("services", name, "depends_on", dep)
        if edge.condition is DependsCondition.COMPLETED_SUCCESSFULLY:
            ctx.notes.add(path, f"{dep} runs as an init container of each {name} pod")
        else:
            ctx.notes.add(path, f"start order ({edge.condition}) is not enforced on Kubernetes; "
                                "the Service routes only to ready pods")


def _network_labels(ctx: RenderContext, name: str, service: Service) -> dict[str, str]:
    if service.network_mode is not None:
        return {}
    out = {}
    for net, attach in service.networks.items():
        out[network_label(net)] = "true"
        if attach is not None and (attach.aliases or attach.ipv4_address or attach.ipv6_address):
            ctx.notes.add(("services", name, "networks", net),
                          "aliases and fixed addresses are not supported on kubernetes; left out")
    return out


def _pod_spec(ctx: RenderContext, name: str, service: Service, containers: tuple[Any, list[Any]],
              volumes: list[Any]) -> Any:
    container, init_containers = containers
    unique: dict[str, Any] = {}
    for volume in volumes:
        unique.setdefault(volume.name, volume)
    host_network = None
    if service.network_mode == "host":
        host_network = True
    elif service.network_mode is not None:
        ctx.notes.unmapped(("services", name, "network_mode"), service.network_mode)
    dns = None
    if service.dns or service.dns_search or service.dns_opt:
        dns = k8s.V1PodDNSConfig(nameservers=service.dns or None, searches=service.dns_search or None,
                                 options=[_dns_option(o) for o in service.dns_opt] or None)
    sysctls = [k8s.V1Sysctl(name=k, value=v) for k, v in service.sysctls.items()]
    hostname = dns_label(service.hostname) if service.hostname else None
    return k8s.V1PodSpec(
        containers=[container],
        init_containers=init_containers or None,
        volumes=list(unique.values()) or None,
        host_network=host_network,
        hostname=hostname,
        host_aliases=[k8s.V1HostAlias(hostnames=[host], ip=ip)
                      for host, ips in service.extra_hosts.items() for ip in ips] or None,
        dns_config=dns,
        security_context=k8s.V1PodSecurityContext(sysctls=sysctls) if sysctls else None,
        termination_grace_period_seconds=_grace(service.stop_grace_period),
    )


def _dns_option(option: str) -> Any:
    key, sep, value = option.partition(":")
    return k8s.V1PodDNSConfigOption(name=key, value=value if sep else None)


def _grace(period: Duration | None) -> int | None:
    return None if period is None else int(period.seconds)


def _strategy(service: Service) -> Any:
    update = service.deploy.update_config if service.deploy else None
    if update is None or (update.parallelism is None and update.order is None):
        return None
    step = update.parallelism or 1
    start_first = update.order is not None and update.order.value == "start-first"
    return k8s.V1DeploymentStrategy(type="RollingUpdate", rolling_update=k8s.V1RollingUpdateDeployment(
        max_surge=step if start_first else 0, max_unavailable=0 if start_first else step))


def _service(ctx: RenderContext, name: str, service: Service) -> Any:
    """Discovery by the compose service name; ports are the container (target) ports, as in Compose."""
    ports: dict[tuple[int, str], Any] = {}
    for port in service.ports:
        key = (port.target, port.protocol.value.upper())
        ports.setdefault(key, key)
    for i, text in enumerate(service.expose):
        number, _, proto = str(text).partition("/")
        if not number.isdigit():
            ctx.notes.add(("services", name, "expose", i), f"port range {text} left out")
            continue
        key = (int(number), (proto or "tcp").upper())
        ports.setdefault(key, key)
    spec_ports = [k8s.V1ServicePort(name=f"{proto.lower()}-{number}", port=number, target_port=number,
                                    protocol=proto) for number, proto in ports]
    spec = k8s.V1ServiceSpec(selector=selector(ctx.project.name, name), ports=spec_ports or None,
                             cluster_ip=None if spec_ports else "None")
    metadata = meta(ctx, dns_label(name), name)
    return k8s.V1Service(api_version="v1", kind="Service", metadata=metadata, spec=spec)
