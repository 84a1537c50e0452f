"""NetworkPolicies that mirror Compose's network isolation.

Under Compose a container reaches exactly the containers that share one of its networks, and an
`internal` network has no way out. NetworkPolicies are additive, so one policy per network
("members accept traffic from members") unions to the same rule for a pod on several networks;
published ports add a policy accepting those ports from anywhere (the node's port was open to
all); a pod whose networks are all internal may only send to its networks' members and to DNS.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s  # type: ignore[import-untyped]

from stackup.deploy.kubernetes.context import RenderContext
from stackup.deploy.kubernetes.names import PROJECT, dns_label, network_label, selector
from stackup.deploy.kubernetes.workloads import meta
from stackup.spec.models import Service


def _members(ctx: RenderContext, network: str) -> Any:
    labels = {PROJECT: dns_label(ctx.project.name), network_label(network): "true"}
    return k8s.V1LabelSelector(match_labels=labels)


def network_policies(ctx: RenderContext, services: dict[str, Service]) -> list[Any]:
    out: list[Any] = []
    used = sorted({net for svc in services.values() if svc.network_mode is None for net in svc.networks})
    for net in used:
        name = dns_label(f"{ctx.project.name}-net-{net}")
        peer = k8s.V1NetworkPolicyPeer(pod_selector=_members(ctx, net))
        rule = k8s.V1NetworkPolicyIngressRule(_from=[peer])
        out.append(_policy(ctx, name, _members(ctx, net), ingress=[rule]))
        top = ctx.project.networks.get(net)
        if top is not None and (top.driver or top.ipam or top.driver_opts):
            ctx.notes.add(("networks", net), "driver, driver_opts and ipam are not supported on kubernetes; "
                                             "left out")
    for name, svc in services.items():
        if svc.network_mode is not None:
            continue
        published = [p for p in svc.ports if p.published]
        if published:
            ports = [k8s.V1NetworkPolicyPort(port=p.target, protocol=p.protocol.value.upper())
                     for p in published]
            out.append(_policy(ctx, dns_label(f"{name}-published"), _own(ctx, name),
                               ingress=[k8s.V1NetworkPolicyIngressRule(ports=ports)], service=name))
        nets = [ctx.project.networks.get(n) for n in svc.networks]
        if nets and all(n is not None and n.internal for n in nets):
            peers = [k8s.V1NetworkPolicyPeer(pod_selector=_members(ctx, n)) for n in sorted(svc.networks)]
            dns = [k8s.V1NetworkPolicyPort(port=53, protocol=p) for p in ("UDP", "TCP")]
            out.append(_policy(ctx, dns_label(f"{name}-internal"), _own(ctx, name), egress=[
                k8s.V1NetworkPolicyEgressRule(to=peers), k8s.V1NetworkPolicyEgressRule(ports=dns)],
                service=name))
    return out


def _own(ctx: RenderContext, service: str) -> Any:
    return k8s.V1LabelSelector(match_labels=selector(ctx.project.name, service))


def _policy(ctx: RenderContext, name: str, pods: Any, *, ingress: list[Any] | None = None,
            egress: list[Any] | None = None, service: str | None = None) -> Any:
    types = (["Ingress"] if ingress is not None else []) + (["Egress"] if egress is not None else [])
    return k8s.V1NetworkPolicy(
        api_version="networking.k8s.io/v1", kind="NetworkPolicy", metadata=meta(ctx, name, service),
        spec=k8s.V1NetworkPolicySpec(pod_selector=pods, policy_types=types, ingress=ingress, egress=egress),
    )
