"""Real kernel: isolation between bridges, internal networks, published ports through DNAT."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from ipaddress import IPv4Address, IPv4Network

import pytest

from stackup.net import firewall
from stackup.net.firewall import NetRule, PortRule, Proto
from tests.net.conftest import Lab, ping

pytestmark = pytest.mark.engine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _host_address() -> IPv4Address | None:
    """The host's own address on its uplink (local traffic only: it never leaves the machine)."""
    out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if not fields[1].startswith(("lo", "stk")):
            return IPv4Address(fields[3].split("/")[0])
    return None


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_bridges_are_isolated(lab: Lab) -> None:
    br_a, net_a = lab.bridge("a")
    br_b, net_b = lab.bridge("b")
    a1 = lab.container("a1", br_a, net_a, 2)
    a2 = lab.container("a2", br_a, net_a, 3)
    b1 = lab.container("b1", br_b, net_b, 2)
    lab.firewall.sync([NetRule(bridge=br_a, subnet=net_a), NetRule(bridge=br_b, subnet=net_b)], [])
    assert ping(lab, a1, net_a.network_address + 3), "same network must still work"
    assert ping(lab, a1, net_b.network_address + 1), "host addresses stay reachable"
    assert not ping(lab, a1, net_b.network_address + 2, expect=False)
    assert not ping(lab, b1, net_a.network_address + 2, expect=False)
    assert ping(lab, a2, net_a.network_address + 2)
    lab.firewall.sync(
        [NetRule(bridge=br_a, subnet=net_a), NetRule(bridge=br_b, subnet=net_b)], []
    )  # idempotent
    assert lab.firewall.table in firewall.list_tables()


def test_internal_network_has_no_way_out(lab: Lab) -> None:
    br_i, net_i = lab.bridge("int", internal=True)
    br_b, net_b = lab.bridge("out")
    inner = lab.container("i1", br_i, net_i, 2, route=False)
    peer = lab.container("i2", br_i, net_i, 3, route=False)
    outside = lab.container("o1", br_b, net_b, 2)
    lab.firewall.sync(
        [NetRule(bridge=br_i, subnet=net_i, internal=True), NetRule(bridge=br_b, subnet=net_b)], []
    )
    target = net_b.network_address + 2
    result = lab.run(inner, "ping", "-c", "1", "-W", "1", str(target))
    assert result.returncode != 0 and "unreachable" in result.stderr.lower()
    assert ping(lab, inner, net_i.network_address + 3)
    assert ping(lab, peer, net_i.network_address + 2)
    # Even with a route added by hand, the firewall drops what leaves the internal bridge.
    lab.run(inner, "ip", "route", "add", "default", "via", str(net_i.network_address + 1))
    assert not ping(lab, inner, target, expect=False)
    assert not ping(lab, outside, net_i.network_address + 2, expect=False)


def test_published_port_reaches_httpd_via_loopback_host_address_and_hairpin(lab: Lab) -> None:
    br, net = lab.bridge("pub")
    web = lab.container("web", br, net, 2)
    sibling = lab.container("sib", br, net, 3)
    lab.httpd(web, 80, "published")
    port = _free_port()
    rules = [
        PortRule(host_port=port, proto=Proto.TCP, container_ip=net.network_address + 2, container_port=80)
    ]
    lab.firewall.sync([NetRule(bridge=br, subnet=net)], rules)
    assert _get(f"http://127.0.0.1:{port}/") == "published"
    host = _host_address()
    if host is not None:
        assert _get(f"http://{host}:{port}/") == "published"
    gateway = net.network_address + 1
    assert _get(f"http://{gateway}:{port}/") == "published"
    hairpin = lab.run(sibling, "wget", "-q", "-O", "-", f"http://{gateway}:{port}/")
    assert hairpin.stdout == "published"
    lab.firewall.sync([NetRule(bridge=br, subnet=net)], [])
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/")


def test_published_port_bound_to_one_address(lab: Lab) -> None:
    br, net = lab.bridge("one")
    web = lab.container("w", br, net, 2)
    lab.httpd(web, 80, "only loopback")
    port = _free_port()
    rule = PortRule(
        host_ip=IPv4Address("127.0.0.1"),
        host_port=port,
        container_ip=net.network_address + 2,
        container_port=80,
    )
    lab.firewall.sync([NetRule(bridge=br, subnet=net)], [rule])
    assert _get(f"http://127.0.0.1:{port}/") == "only loopback"
    with pytest.raises(OSError):
        _get(f"http://{net.network_address + 1}:{port}/")


def test_destroy_is_idempotent(lab: Lab) -> None:
    lab.firewall.sync([NetRule(bridge="stkbdummy0", subnet=IPv4Network("10.255.255.0/24"))], [])
    lab.firewall.destroy()
    lab.firewall.destroy()
    assert lab.firewall.table not in firewall.list_tables()
