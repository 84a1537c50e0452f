"""Real kernel: namespaces, bridges, veths; reachability within a bridge."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Interface

import pytest

from stackup.errors import RuntimeFailure
from stackup.net import bridge, names, netns, rtnl
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
    bridge.ensure_bridge(br, IPv4Interface((subnet.network_address + 1, 24)), internal=False)
    addrs = subprocess.run(["ip", "-o", "-4", "addr", "show", br], capture_output=True, text=True, check=True)
    assert addrs.stdout.count("inet ") == 1
    bridge.detach("stkvnonexist0")
    bridge.delete_bridge("stkbnonexist0")


def test_attach_configures_inside_and_tags_the_host_end(lab: Lab) -> None:
    br, subnet = lab.bridge("cfg")
    path = netns.netns_dir(lab.root) / f"cfg-{lab.token}"
    netns.create(path)
    lab.namespaces.append(path)
    address = IPv4Interface((subnet.network_address + 9, 24))
    gateway = subnet.network_address + 1
    host = bridge.attach(path, br, "eth0", address, gateway, mac="02:42:0a:00:00:09", alias="stackup:labtag")
    lab.veths.append(host)
    shown = subprocess.run(
        ["ip", "-o", "link", "show", host], capture_output=True, text=True, check=True
    ).stdout
    assert f"master {br}" in shown and "alias stackup:labtag" in shown and ",UP" in shown
    inside = lab.run(path, "ip", "-o", "addr").stdout
    assert f"inet {address}" in inside and "inet 127.0.0.1/8" in inside
    assert "02:42:0a:00:00:09" in lab.run(path, "ip", "-o", "link", "show", "eth0").stdout
    assert f"default via {gateway} dev eth0" in lab.run(path, "ip", "route").stdout
    sysctls = lab.run(
        path, "cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify", "/proc/sys/net/ipv4/conf/eth0/rp_filter"
    )
    assert sysctls.stdout.split() == ["1", "2"]
    assert ping(lab, path, gateway)


def test_failed_attach_leaves_no_veth(lab: Lab) -> None:
    br, subnet = lab.bridge("fail")
    path = netns.netns_dir(lab.root) / f"fail-{lab.token}"
    netns.create(path)
    lab.namespaces.append(path)
    host = names.veth_name(f"{path}:eth0")
    unreachable = IPv4Address("192.0.2.1")  # not on the container's subnet: the route is refused
    with pytest.raises(RuntimeFailure, match=r"add default route via 192\.0\.2\.1"):
        bridge.attach(path, br, "eth0", IPv4Interface((subnet.network_address + 2, 24)), unreachable)
    assert host not in bridge.our_links()
    assert "eth0" not in lab.run(path, "ip", "-o", "link").stdout
    with pytest.raises(RuntimeFailure, match="does not exist"):
        bridge.attach(path, "stkbnonexist0", "eth0", IPv4Interface((subnet.network_address + 2, 24)), None)


def test_batch_reports_the_refused_request(lab: Lab) -> None:
    path = netns.netns_dir(lab.root) / f"batch-{lab.token}"
    netns.create(path)
    lab.namespaces.append(path)
    with netns.enter(path):
        sock = rtnl.Rtnl()
    with sock:
        with pytest.raises(rtnl.NetlinkFailure) as refused:
            sock.batch([rtnl.link_set("lo", up=True), rtnl.link_del("stkvnonexist0")])
        assert refused.value.position == 1 and rtnl.gone(refused.value)
        assert "delete link stkvnonexist0" in str(refused.value)
        sock.batch([rtnl.link_set(1, up=True)])  # the socket is still usable after a refusal
    assert "UP" in lab.run(path, "ip", "-o", "link", "show", "lo").stdout


def test_threads_create_and_attach_at_once_and_stay_home(lab: Lab) -> None:
    br, subnet = lab.bridge("par")
    home = os.stat("/proc/thread-self/ns/net").st_ino
    paths = [netns.netns_dir(lab.root) / f"par{i}-{lab.token}" for i in range(8)]
    lab.namespaces.extend(paths)
    lab.veths.extend(names.veth_name(f"{p}:eth0") for p in paths)

    def wire(index: int) -> int:
        netns.create(paths[index])
        address = IPv4Interface((subnet.network_address + 10 + index, 24))
        bridge.attach(paths[index], br, "eth0", address, subnet.network_address + 1)
        return os.stat("/proc/thread-self/ns/net").st_ino

    with ThreadPoolExecutor(max_workers=4) as pool:
        namespaces_after = list(pool.map(wire, range(len(paths))))
    assert namespaces_after == [home] * len(paths)
    assert os.stat("/proc/thread-self/ns/net").st_ino == home
    assert ping(lab, paths[0], subnet.network_address + 10 + len(paths) - 1)
