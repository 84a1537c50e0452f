"""Pure parts of the network layer: names, nft rendering, port checks on loopback."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from pydantic import ValidationError

from stackup.net import names
from stackup.net.firewall import NetRule, PortRule, Proto, render
from stackup.net.ports import PortRequest, check_host_ports, find_holder


def test_names_are_short_stable_and_distinct() -> None:
    assert names.bridge_name("proj_default") == names.bridge_name("proj_default")
    assert names.bridge_name("proj_default") != names.bridge_name("proj_back")
    for name in (names.bridge_name("x" * 300), names.veth_name("y")):
        assert len(name) == 15 and names.is_ours(name)
    assert names.table_name(Path("/a")) != names.table_name(Path("/b"))
    assert not names.is_ours("docker0")


@pytest.mark.parametrize("bad", ["", "a" * 16, 'x"; drop', "a b"])
def test_unsafe_interface_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValidationError):
        NetRule(bridge=bad, subnet=IPv4Network("10.0.0.0/24"))


def test_render_has_every_rule_kind() -> None:
    text = render(
        "stackup_t",
        [
            NetRule(bridge="stkbone", subnet=IPv4Network("10.1.0.0/24")),
            NetRule(bridge="stkbint", subnet=IPv4Network("10.2.0.0/24"), internal=True),
        ],
        [
            PortRule(host_port=8080, container_ip=IPv4Address("10.1.0.2"), container_port=80),
            PortRule(
                host_ip=IPv4Address("127.0.0.1"),
                host_port=5353,
                proto=Proto.UDP,
                container_ip=IPv4Address("10.1.0.3"),
                container_port=53,
            ),
        ],
    )
    assert text.startswith("table inet stackup_t\ndelete table inet stackup_t\n")
    assert 'ip saddr 10.1.0.0/24 oifname != "stkbone" masquerade' in text
    assert 'ip saddr 10.2.0.0/24 oifname != "stkbint" masquerade' not in text
    assert 'elements = { "stkbint" }' in text
    assert "meta l4proto tcp th dport 8080 dnat ip to 10.1.0.2:80" in text
    assert "ip daddr 127.0.0.1 meta l4proto udp th dport 5353 dnat ip to 10.1.0.3:53" in text
    assert "ct status dnat ip saddr 127.0.0.0/8 masquerade" in text


def test_render_empty_is_valid_shape() -> None:
    text = render("stackup_t", [], [])
    assert "set bridges { type ifname; }" in text


def test_port_rule_range() -> None:
    with pytest.raises(ValidationError):
        PortRule(host_port=0, container_ip=IPv4Address("10.0.0.2"), container_port=80)


def test_port_conflicts_name_the_holder() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        conflicts = check_host_ports(
            [
                PortRequest(host_ip=IPv4Address("127.0.0.1"), port=port),
                PortRequest(port=port, proto=Proto.TCP),
            ]
        )
        assert [c.reason for c in conflicts] == ["is in use", "is published twice"]
        assert conflicts[0].holder_pid is not None
        assert f"port 127.0.0.1:{port}/tcp is in use by" in str(conflicts[0])
        assert find_holder(port, Proto.TCP)[0] == conflicts[0].holder_pid


def test_free_ports_and_distinct_addresses_do_not_conflict() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    requests = [
        PortRequest(host_ip=IPv4Address("127.0.0.1"), port=port),
        PortRequest(host_ip=IPv4Address("127.0.0.2"), port=port),
        PortRequest(host_ip=IPv4Address("127.0.0.1"), port=port, proto=Proto.UDP),
    ]
    assert check_host_ports(requests) == []


def test_udp_holder() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        conflicts = check_host_ports(
            [PortRequest(host_ip=IPv4Address("127.0.0.1"), port=port, proto=Proto.UDP)]
        )
        assert len(conflicts) == 1 and conflicts[0].holder_name is not None


def test_unknown_address() -> None:
    conflicts = check_host_ports([PortRequest(host_ip=IPv4Address("203.0.113.254"), port=8080)])
    assert conflicts and "does not have" in conflicts[0].reason
