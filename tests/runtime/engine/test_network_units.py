"""The network manager's pure parts: request/result models, port planning, foreign chain detection."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.net.firewall import Proto
from stackup.runtime.engine.network.foreign import ForeignFilter
from stackup.runtime.engine.network.ports import as_rule, clash, plan_ports
from stackup.runtime.wire.network import (
    Attachment,
    EndpointInfo,
    HostLine,
    NetnsInfo,
    PortBinding,
    PortRecord,
)

A = IPv4Address


def test_attachment_accepts_triples() -> None:
    assert Attachment.of(("front", ["web"], "10.1.0.9")) == Attachment(
        network="front", aliases=("web",), ipv4_address=A("10.1.0.9")
    )
    same = Attachment(network="back")
    assert Attachment.of(same) is same


def test_resolv_conf_and_hosts() -> None:
    info = NetnsInfo(
        path=Path("/x"),
        endpoints=(
            EndpointInfo(
                network="n", ifname="eth0", address=A("10.1.0.2"), prefixlen=24, gateway=A("10.1.0.1")
            ),
        ),
        nameservers=("10.1.0.1", "9.9.9.9"),
        search=("corp.example",),
        options=("ndots:2",),
        hosts=(HostLine(address=A("10.1.0.2"), hostname="web"),),
    )
    assert info.resolv_conf == (
        "nameserver 10.1.0.1\nnameserver 9.9.9.9\nsearch corp.example\noptions ndots:2\n"
    )
    assert info.hosts_lines == ["10.1.0.2\tweb"]


def _record(port: int, host_ip: str | None = None, proto: Proto = Proto.TCP) -> PortRecord:
    return PortRecord(
        container_id="other" * 4,
        host_ip=None if host_ip is None else A(host_ip),
        host_port=port,
        proto=proto,
        container_ip=A("10.1.0.3"),
        container_port=80,
    )


def test_clash_rules() -> None:
    assert clash(None, 8080, Proto.TCP, _record(8080, "127.0.0.1"))
    assert clash(A("127.0.0.1"), 8080, Proto.TCP, _record(8080))
    assert not clash(A("127.0.0.1"), 8080, Proto.TCP, _record(8080, "127.0.0.2"))
    assert not clash(None, 8080, Proto.UDP, _record(8080))


def test_plan_ports_names_our_own_holder_and_fills_random_ports() -> None:
    others = [_record(18080)]
    with pytest.raises(RuntimeFailure, match=r"port 18080/tcp is published by container otherotherot"):
        plan_ports("mine", [PortBinding(host_port=18080, container_port=80)], A("10.1.0.2"), others)
    planned = plan_ports("mine", [PortBinding(container_port=80, proto=Proto.UDP)], A("10.1.0.2"), others)
    [record] = planned
    assert record.host_port > 0 and record.proto is Proto.UDP and record.container_ip == A("10.1.0.2")
    assert as_rule(record).container_port == 80


def _listing(policy: str, *chains: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = [
        {"chain": {"name": "FORWARD", "hook": "forward", "policy": policy}},
    ]
    entries += [{"chain": {"name": name}} for name in chains]
    return entries


def test_foreign_chain_detection() -> None:
    docker = ForeignFilter()
    assert docker.target_chain(_listing("accept", "DOCKER-USER")) is None
    assert docker.target_chain(_listing("drop")) == "FORWARD"
    assert docker.target_chain(_listing("drop", "DOCKER-USER")) == "DOCKER-USER"
    assert docker.target_chain([]) is None
