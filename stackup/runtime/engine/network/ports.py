"""Turning requested published ports into firewall rules, refusing conflicts first.

DNAT does not bind host ports, so nothing in the kernel stops two containers of this engine from
claiming the same host port, or a container from shadowing a host process: both are checked here
(the first against our own records, the second through `net.ports`, which names the holding
process), and every problem is reported in one error before any rule changes. A request without
a host port gets one the kernel considers free at that moment and that no record of ours uses.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Address

from stackup.errors import RuntimeFailure
from stackup.net.firewall import PortRule, Proto
from stackup.net.ports import PortRequest, check_host_ports
from stackup.runtime.wire.network import PortBinding, PortRecord

_RANDOM_TRIES = 64


def describe(binding: PortBinding) -> str:
    where = f"{binding.host_ip}:" if binding.host_ip is not None else ""
    return f"{where}{binding.host_port}/{binding.proto}"


def clash(host_ip: IPv4Address | None, port: int, proto: Proto, other: PortRecord) -> bool:
    """Same port and protocol, on the same address or where either side means every address."""
    same_ip = host_ip is None or other.host_ip is None or host_ip == other.host_ip
    return port == other.host_port and proto is other.proto and same_ip


def conflicts(requested: Sequence[PortBinding], others: Sequence[PortRecord]) -> list[str]:
    """Why each fixed host port cannot be had: another of our containers, or a host process."""
    problems = [
        f"port {describe(binding)} is published by container {other.container_id[:12]}"
        for binding in requested
        if binding.host_port is not None
        for other in others
        if clash(binding.host_ip, binding.host_port, binding.proto, other)
    ]
    fixed = [
        PortRequest(host_ip=b.host_ip, port=b.host_port, proto=b.proto)
        for b in requested
        if b.host_port is not None
    ]
    return problems + [str(conflict) for conflict in check_host_ports(fixed)]


def free_port(binding: PortBinding, taken: Sequence[PortRecord]) -> int:
    """A port the kernel says is free now and that no published port of ours uses."""
    kind = socket.SOCK_STREAM if binding.proto is Proto.TCP else socket.SOCK_DGRAM
    for _ in range(_RANDOM_TRIES):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind((str(binding.host_ip or "0.0.0.0"), 0))
            port = int(probe.getsockname()[1])
        if not any(clash(binding.host_ip, port, binding.proto, other) for other in taken):
            return port
    raise RuntimeFailure(f"no free host port found for {binding.container_port}/{binding.proto}")


def plan_ports(
    container_id: str,
    requested: Sequence[PortBinding],
    target: IPv4Address,
    others: Sequence[PortRecord],
) -> list[PortRecord]:
    """The records for `requested` pointing at `target`, or RuntimeFailure listing every conflict."""
    problems = conflicts(requested, others)
    if problems:
        raise RuntimeFailure("cannot publish ports: " + "; ".join(problems))
    records: list[PortRecord] = []
    for binding in requested:
        port = binding.host_port or free_port(binding, [*others, *records])
        records.append(
            PortRecord(
                container_id=container_id,
                host_ip=binding.host_ip,
                host_port=port,
                proto=binding.proto,
                container_ip=target,
                container_port=binding.container_port,
            )
        )
    return records


def as_binding(record: PortRecord) -> PortBinding:
    return PortBinding(
        host_ip=record.host_ip,
        host_port=record.host_port,
        container_port=record.container_port,
        proto=record.proto,
    )


def as_rule(record: PortRecord) -> PortRule:
    return PortRule(
        host_ip=record.host_ip,
        host_port=record.host_port,
        proto=record.proto,
        container_ip=record.container_ip,
        container_port=record.container_port,
    )
