"""Real kernel: namespaces, bridges, veths; reachability within a bridge."""

from __future__ import annotations

import subprocess

import pytest

from stackup.net import bridge, names, netns
from tests.net.conftest import Lab, ping

pytestmark = pytest.mark.engine


def test_netns_lives_under_root_not_run_netns(lab: Lab) -> None:
    path = netns.netns_dir(lab.root) / f"solo-{lab.token}"
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    netns.create(path)
    lab.namespaces.append(path)
    assert netns.is_netns(path)
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert after == before
    links = lab.run(path, "ip", "-o", "link").stdout
    assert links.count("\n") == 1 and " lo:" in links
    netns.delete(path)
    assert not path.exists()
    netns.delete(path)  # idempotent


def test_two_namespaces_on_one_bridge_talk(lab: Lab) -> None:
    br, subnet = lab.bridge("a")
    one = lab.container("one", br, subnet, 2)
    two = lab.container("two", br, subnet, 3)
    assert ping(lab, one, subnet.network_address + 3)
    assert ping(lab, two, subnet.network_address + 1)  # the gateway, a host address
    lab.httpd(two, 8080, "hello from two")
    fetched = lab.run(one, "wget", "-q", "-O", "-", f"http://{subnet.network_address + 3}:8080/")
    assert fetched.stdout == "hello from two"
    routes = lab.run(one, "ip", "route").stdout
    assert f"default via {subnet.network_address + 1}" in routes


def test_bridge_mac_is_pinned_and_names_are_ours(lab: Lab) -> None:
    br, subnet = lab.bridge("mac")
    lab.container("m1", br, subnet, 2)
    link = subprocess.run(["ip", "-o", "link", "show", br], capture_output=True, text=True, check=True).stdout
    assert bridge.bridge_mac(br) in link
    assert br in bridge.our_links() and lab.veths[0] in bridge.our_links()
    assert all(names.is_ours(name) and len(name) <= 15 for name in (br, *lab.veths))


def test_ensure_bridge_is_idempotent_and_detach_tolerates_missing(lab: Lab) -> None:
    br, subnet = lab.bridge("idem")
    from ipaddress import IPv4Interface

    bridge.ensure_bridge(br, IPv4Interface((subnet.network_address + 1, 24)), internal=False)
    addrs = subprocess.run(["ip", "-o", "-4", "addr", "show", br], capture_output=True, text=True, check=True)
    assert addrs.stdout.count("inet ") == 1
    bridge.detach("stkvnonexist0")
    bridge.delete_bridge("stkbnonexist0")
