"""Network layer benchmark: per-container setup cost, firewall sync, DNS query latency.

Per container the engine does netns + veth + enslave + address + routes. The target (networks
issue) is within 2x of the floor: the same work done as plainly as possible with pyroute2 in
process. The floor is measured in the same run, interleaved with the engine's path container by
container, so load from other work on the machine hits both alike. runtime-notes §5.2 measured it
at 4.2 ms once (kept as `reference_floor_ms`), against 11.5 ms for seven `ip` execs. Needs root;
makes only private bridges/namespaces under a temporary root and removes them.
Run: `python bench/bench_network.py [N]`. Writes bench/results/network.json.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rrset
from pyroute2 import IPRoute

from stackup.net import bridge, names, netns
from stackup.net.dns import DnsEntry, DnsServer, DnsTable
from stackup.net.firewall import Firewall, NetRule, PortRule
from stackup.net.ipam import AddressPool, choose_subnet

RESULTS = Path(__file__).parent / "results" / "network.json"
REFERENCE_FLOOR_MS = 4.2  # runtime-notes §5.2, pyroute2 in process, same machine, once
IP_EXECS_MS = 11.5
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
_LIBC = ctypes.CDLL(None, use_errno=True)
TAG = "stackup:bench"  # the engine tags every veth it makes (see netdoctor); so does the bench


def ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        "n": len(samples),
    }


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def private_subnet() -> IPv4Network:
    pool = AddressPool(base=IPv4Network("10.200.0.0/13"), size=22)
    return choose_subnet([pool], set(), bridge.host_routes())


def _libc_call(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def floor_container(
    path: Path, host_ipr: Any, master: int, address: IPv4Interface, gateway: IPv4Address
) -> None:
    """The floor: netns + veth + enslave + address + links up + default route, plain pyroute2.

    The namespace is made the way runtime-notes §5.2 measured it: ctypes unshare + bind mount,
    the in-namespace socket opened while inside, then `setns` back. pyroute2's own
    `netns.create` forks a helper (17 ms). `host_ipr` is one host socket held for the whole run,
    as a plain program would hold it. The floor leaves out what the engine adds on top (two
    sysctls and the alias tag), so the ratio errs against the engine.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    inside: Any = None
    try:
        _libc_call(_LIBC.unshare(CLONE_NEWNET), "unshare")
        _libc_call(_LIBC.mount(b"/proc/thread-self/ns/net", os.fsencode(path), None, MS_BIND, None), "mount")
        inside = IPRoute()  # bound to the new namespace
        with open(path, "rb") as pinned:
            peer = {"ifname": "eth0", "net_ns_fd": pinned.fileno()}
            host = names.veth_name(f"{path}:eth0")
            host_ipr.link("add", ifname=host, kind="veth", master=master, state="up", peer=peer)
        index = socket.if_nametoindex("eth0")  # the thread is still inside
    except BaseException:
        if inside is not None:
            inside.close()
        raise
    finally:
        _libc_call(_LIBC.setns(own, CLONE_NEWNET), "setns back")
        os.close(own)
    with inside:
        inside.link("set", index=1, state="up")
        inside.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
        inside.link("set", index=index, state="up")
        inside.route("add", dst="0.0.0.0/0", gateway=str(gateway))


def bench_setup(root: Path, n: int, results: dict[str, object]) -> None:
    """The engine's path (`netns.create` + `bridge.attach`) and the floor, alternating."""
    token = secrets.token_hex(3)
    br = names.bridge_name(f"bench-{token}")
    subnet = private_subnet()
    gateway = subnet.network_address + 1
    made: list[tuple[Path, str]] = []
    create_ns: list[float] = []
    attach: list[float] = []
    total: list[float] = []
    floor: list[float] = []
    teardown: list[float] = []
    host_ipr = IPRoute()
    try:
        results["bridge_create"] = ms(
            [timed(lambda: bridge.ensure_bridge(br, IPv4Interface((gateway, 22)), internal=False))]
        )
        master = socket.if_nametoindex(br)
        netns.netns_dir(root).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            for turn in (i % 2, 1 - i % 2):  # who goes first alternates
                path = netns.netns_dir(root) / (f"floor{i}" if turn == 0 else f"c{i}")
                address = IPv4Interface((gateway + 1 + 2 * i + turn, 22))
                made.append((path, names.veth_name(f"{path}:eth0")))  # before: a failure is cleaned up
                if turn == 0:
                    start = time.perf_counter()
                    floor_container(path, host_ipr, master, address, gateway)
                    floor.append(time.perf_counter() - start)
                    continue
                start = time.perf_counter()
                netns.create(path)
                middle = time.perf_counter()
                bridge.attach(path, br, "eth0", address, gateway, alias=TAG)
                end = time.perf_counter()
                create_ns.append(middle - start)
                attach.append(end - middle)
                total.append(end - start)
        while made:
            path, host = made.pop()
            start = time.perf_counter()
            bridge.unplug_namespace(path, [host])  # what the engine's teardown does
            if path.name.startswith("c"):
                teardown.append(time.perf_counter() - start)
    finally:
        host_ipr.close()
        for path, host in made:
            bridge.unplug_namespace(path, [host])
        bridge.delete_bridge(br)
    results["netns_create"] = ms(create_ns)
    results["veth_attach_and_configure"] = ms(attach)
    results["per_container_setup"] = ms(total)
    results["per_container_teardown"] = ms(teardown)
    results["floor_pyroute2_setup"] = ms(floor)
    results["floor_ms"] = round(statistics.median(floor) * 1000, 3)
    results["reference_floor_ms"] = REFERENCE_FLOOR_MS
    results["ip_execs_ms"] = IP_EXECS_MS
    results["setup_vs_floor"] = round(statistics.median(total) / statistics.median(floor), 2)


def bench_firewall(root: Path, results: dict[str, object]) -> None:
    fw = Firewall(root)
    nets = [
        NetRule(bridge=names.bridge_name(f"fw{i}"), subnet=IPv4Network(f"10.77.{i}.0/24")) for i in range(5)
    ]
    ports = [
        PortRule(host_port=20000 + i, container_ip=IPv4Address(f"10.77.{i % 5}.{2 + i}"), container_port=80)
        for i in range(50)
    ]
    try:
        results["firewall_sync_5_networks_50_ports"] = ms(
            [timed(lambda: fw.sync(nets, ports)) for _ in range(20)]
        )
    finally:
        fw.destroy()


def bench_dns(root: Path, n: int, results: dict[str, object]) -> None:
    token = secrets.token_hex(3)
    br = names.bridge_name(f"benchdns-{token}")
    subnet = private_subnet()
    gateway = subnet.network_address + 1
    asker_ip = gateway + 1
    path = netns.netns_dir(root) / "asker"
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(("127.0.0.1", 0))
    upstream.settimeout(0.2)
    stop = threading.Event()

    def fake_upstream() -> None:
        while not stop.is_set():
            try:
                wire, peer = upstream.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            reply = dns.message.make_response(query)
            reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "198.51.100.7"))
            upstream.sendto(reply.to_wire(), peer)

    entries = [
        DnsEntry(container=f"c{i}", network="front", address=asker_ip + i, names=(f"svc{i % 10}", f"c{i}"))
        for i in range(100)
    ]
    server = DnsServer(DnsTable.build(entries), [upstream.getsockname()])
    feeder = threading.Thread(target=fake_upstream, daemon=True)
    feeder.start()
    host = ""
    try:
        bridge.ensure_bridge(br, IPv4Interface((gateway, 22)), internal=False)
        netns.create(path)
        host = bridge.attach(path, br, "eth0", IPv4Interface((asker_ip, 22)), gateway)
        server.listen(str(gateway))
        server.start()
        local: list[float] = []
        relayed: list[float] = []
        with netns.enter(path):
            for i in range(n):
                query = dns.message.make_query(f"svc{i % 10}", "A")
                local.append(timed(lambda q=query: dns.query.udp(q, str(gateway), timeout=2)))
            for _ in range(n // 4):
                query = dns.message.make_query("outside.example", "A")
                relayed.append(timed(lambda q=query: dns.query.udp(q, str(gateway), timeout=2)))
        results["dns_local_answer_udp"] = ms(local)
        results["dns_relayed_to_loopback_upstream_udp"] = ms(relayed)
    finally:
        server.stop()
        stop.set()
        feeder.join()
        upstream.close()
        if host:
            bridge.detach(host)
        netns.delete(path)
        bridge.delete_bridge(br)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench_network needs root")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    results: dict[str, object] = {"kernel": os.uname().release, "cpus": os.cpu_count()}
    results["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)  # other work skews every number
    before = set(bridge.our_links())
    with tempfile.TemporaryDirectory(prefix="stackup-bench-net-") as tmp:
        root = Path(tmp)
        bench_setup(root, n, results)
        bench_firewall(root, results)
        bench_dns(root, max(n * 4, 100), results)
    results["links_left_behind"] = sorted(set(bridge.our_links()) - before)
    for key, value in results.items():
        print(f"{key:42} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
