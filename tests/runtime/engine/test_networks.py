"""The network manager on the real kernel: namespaces, bridges, DNS, published ports, restore.

Subnets come from a random /16 of 10.128.0.0/9 that overlaps no host route, names from a per-run
token, and a finalizer removes everything (and asserts nothing is left) even when a test fails.
Traffic only goes to loopback and to addresses on the bridges made here.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from stackup.errors import PlanError, RuntimeFailure
from stackup.net import bridge, netns
from stackup.net.firewall import Firewall
from stackup.net.ipam import AddressPool
from stackup.runtime.engine.network.doctor import OrphanKind
from stackup.runtime.engine.network.foreign import ForeignFilter
from stackup.runtime.engine.network.manager import NetworkManager
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.wire.network import Attachment, Endpoint, NetnsInfo, PortBinding
from stackup.runtime.wire.paths import EnginePaths

pytestmark = pytest.mark.engine

BUSYBOX = "/bin/busybox"


def _random_pool() -> IPv4Network:
    taken = [r for r in bridge.host_routes() if r.prefixlen > 0]
    for _ in range(1000):
        candidate = IPv4Network((random.randrange(0x0A800000, 0x0B000000) & ~0xFFFF, 16))
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise RuntimeError("no free test pool")


def _text(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


class Env:
    """One manager on a private root, plus what the test spawned, all removed at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = secrets.token_hex(3)
        self.paths = EnginePaths(root)
        self.state = StateStore(self.paths.state_db)
        self.pool = _random_pool()
        # The host's own filter: where Docker runs, its FORWARD drop policy must get our accepts
        # (each marked with this root's table, so teardown removes only ours).
        self.foreign = ForeignFilter()
        self.fake_foreign = ForeignFilter(table=f"stackup_test_{self.token}")
        self.manager = self.open()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.bridges: list[str] = []
        self.veths: list[str] = []

    def open(self) -> NetworkManager:
        return NetworkManager(
            self.paths, self.state, pools=[AddressPool(base=self.pool, size=24)], foreign=self.foreign
        )

    def network(self, label: str, **options: object) -> str:
        name = f"{label}-{self.token}"
        self.manager.create_network(name, **options)  # type: ignore[arg-type]
        self.bridges.append(self.manager.inspect_network(name).config.bridge)
        return name

    def container(
        self, label: str, *attachments: Attachment | tuple[str, list[str], str | None]
    ) -> NetnsInfo:
        container_id = f"{label}{self.token}" + "0" * 20
        info = self.manager.connect(container_id, attachments, [label, f"proj-{label}-1"])
        self.veths += [e.host_veth for e in _endpoints(self.manager) if e.container_id == container_id]
        return info

    def run(self, info: NetnsInfo, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        command = ["nsenter", f"--net={info.path}", BUSYBOX, *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def ping(self, info: NetnsInfo, target: IPv4Address) -> bool:
        return self.run(info, "ping", "-c", "1", "-W", "1", str(target)).returncode == 0

    def lookup(self, info: NetnsInfo, name: str) -> subprocess.CompletedProcess[str]:
        return self.run(info, "nslookup", name, info.nameservers[0])

    def httpd(self, info: NetnsInfo, port: int, body: str) -> None:
        docroot = self.root / f"www-{secrets.token_hex(3)}"
        docroot.mkdir()
        (docroot / "index.html").write_text(body)
        command = [
            "nsenter",
            f"--net={info.path}",
            BUSYBOX,
            "httpd",
            "-f",
            "-p",
            str(port),
            "-h",
            str(docroot),
        ]
        self.processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with netns.enter(info.path), socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("httpd did not start")

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        for process in self.processes:
            process.kill()
            process.wait()
        manager = self.manager
        steps = [
            *(lambda c=c: manager.disconnect(c) for c in {e.container_id for e in _endpoints(manager)}),
            *(
                lambda n=n: manager.remove_network(n, force=True)
                for n in [r.name for r in manager.list_networks()]
            ),
            lambda: manager.doctor(fix=True),
            manager.close,
            *(lambda b=b: bridge.delete_bridge(b) for b in self.bridges),
            *(lambda v=v: bridge.detach(v) for v in self.veths),
            Firewall(self.root).destroy,
            lambda: _nft(f"table ip {self.fake_foreign.table}\ndelete table ip {self.fake_foreign.table}\n"),
            self.state.close,
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:
                problems.append(repr(exc))
        return problems

    def leftovers(self) -> list[str]:
        links = _text("ip", "-o", "link")
        found = [n for n in (*self.bridges, *self.veths) if f" {n}:" in links or f" {n}@" in links]
        tables = _text("nft", "list", "tables")
        found += [t for t in (Firewall(self.root).table, self.fake_foreign.table) if t in tables]
        found += self.foreign.ours(Firewall(self.root).table)
        directory = netns.netns_dir(self.root)
        found += [str(p) for p in directory.iterdir()] if directory.exists() else []
        return found


def _endpoints(manager: NetworkManager) -> list[Endpoint]:
    return [e for r in manager.list_networks() for e in manager.inspect_network(r.name).endpoints]


def _nft(script: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False)


@pytest.fixture
def env(stackup_root: Path) -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, bridges and nftables")
    made = Env(stackup_root)
    try:
        yield made
    finally:
        problems = made.cleanup()
        leftovers = made.leftovers()
        assert not problems, problems
        assert not leftovers, f"left behind: {leftovers}"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def test_same_network_talks_and_resolves_other_network_cannot(env: Env) -> None:
    front = env.network("front")
    back = env.network("back")
    web = env.container("web", (front, ["www"], None))
    api = env.container("api", (front, [], None))
    db = env.container("db", (back, [], None))
    web_ip, api_ip = web.endpoints[0].address, api.endpoints[0].address
    assert env.ping(web, api_ip)
    assert web.nameservers[0] == str(web.endpoints[0].gateway)
    assert f"nameserver {web.endpoints[0].gateway}" in web.resolv_conf
    for name in ("api", "proj-api-1"):
        answer = env.lookup(web, name)
        assert answer.returncode == 0 and str(api_ip) in answer.stdout, answer
    alias = env.lookup(api, "www")
    assert alias.returncode == 0 and str(web_ip) in alias.stdout
    hidden = env.lookup(db, "web")
    assert hidden.returncode != 0 and str(web_ip) not in hidden.stdout
    assert not env.ping(db, web_ip)
    route = env.run(web, "ip", "route").stdout
    assert f"default via {web.endpoints[0].gateway}" in route


def test_internal_first_network_routes_via_second(env: Env) -> None:
    inner = env.network("inner", internal=True)
    outer = env.network("outer")
    both = env.container("both", (inner, [], None), (outer, [], None))
    assert [e.ifname for e in both.endpoints] == ["eth0", "eth1"]
    route = env.run(both, "ip", "route").stdout
    assert f"default via {both.endpoints[1].gateway} dev eth1" in route
    env.container("hidden", (inner, [], None))
    with pytest.raises(RuntimeFailure, match="no network that can publish"):
        env.manager.publish(f"hidden{env.token}" + "0" * 20, [PortBinding(container_port=80)])


def test_static_address_and_out_of_subnet_refused_first(env: Env) -> None:
    subnet = IPv4Network((env.pool.network_address + 0x4200, 24))
    net = env.network("static", subnet=str(subnet))
    wanted = subnet.network_address + 77
    fixed = env.container("fix", (net, [], str(wanted)))
    assert fixed.endpoints[0].address == wanted
    assert f"inet {wanted}/24" in env.run(fixed, "ip", "-o", "addr").stdout
    links_before = bridge.our_links()
    with pytest.raises(PlanError, match="outside subnet"):
        env.manager.connect("outside" + "0" * 20, [(net, [], "192.0.2.200")], ["outside"])
    with pytest.raises(RuntimeFailure, match="already in use"):
        env.manager.connect("again" + "0" * 20, [(net, [], str(wanted))], ["again"])
    assert not env.manager.netns_path("outside" + "0" * 20).exists()
    assert bridge.our_links() == links_before
    assert [e.address for e in env.manager.inspect_network(net).endpoints] == [wanted]
    with pytest.raises(PlanError, match="overlaps"):
        env.manager.create_network(f"clash-{env.token}", subnet=str(subnet))


def test_published_port_reachable_and_conflicts_named(env: Env) -> None:
    net = env.network("pub")
    web = env.container("web", (net, [], None))
    other = env.container("other", (net, [], None))
    env.httpd(web, 80, "hello from web")
    [binding] = env.manager.publish(f"web{env.token}" + "0" * 20, [PortBinding(container_port=80)])
    assert binding.host_port is not None
    assert _get(f"http://127.0.0.1:{binding.host_port}/") == "hello from web"
    other_id = f"other{env.token}" + "0" * 20
    with pytest.raises(RuntimeFailure, match=f"{binding.host_port}/tcp is published by container web"):
        env.manager.publish(other_id, [PortBinding(host_port=binding.host_port, container_port=80)])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        held = holder.getsockname()[1]
        with pytest.raises(RuntimeFailure, match=rf"port {held}/tcp is in use by .* \(pid {os.getpid()}\)"):
            env.manager.publish(other_id, [PortBinding(host_port=held, container_port=80)])
    assert env.manager.published(other_id) == []
    assert other.endpoints
    env.manager.unpublish(f"web{env.token}" + "0" * 20)
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{binding.host_port}/")


def test_removal_leaves_nothing(env: Env) -> None:
    net = env.network("gone")
    info = env.container("tmp", (net, [], None))
    container_id = f"tmp{env.token}" + "0" * 20
    with pytest.raises(RuntimeFailure, match="containers attached"):
        env.manager.remove_network(net)
    env.manager.publish(container_id, [PortBinding(container_port=80)])
    env.manager.disconnect(container_id)
    env.manager.disconnect(container_id)  # idempotent
    assert not info.path.exists()
    assert env.state.leases(container_id=container_id) == []
    env.manager.remove_network(net)
    assert env.leftovers() == []
    assert [o for o in env.manager.doctor() if not o.foreign] == []  # other roots may be running


def test_restore_after_crash_brings_back_dns_and_wiring(env: Env) -> None:
    net = env.network("again")
    one = env.container("one", (net, [], None))
    two = env.container("two", (net, [], None))
    env.manager.close()  # the engine "died": DNS is gone, kernel objects stay
    assert env.lookup(one, "two").returncode != 0
    netns.delete(two.path)  # and a reboot took this namespace (and its veth) away
    env.manager = env.open()
    env.manager.restore()
    assert netns.is_netns(two.path)
    answer = env.lookup(one, "two")
    assert answer.returncode == 0 and str(two.endpoints[0].address) in answer.stdout
    assert env.ping(two, one.endpoints[0].address)
    env.manager.restore(live_containers=[f"one{env.token}" + "0" * 20])
    assert not two.path.exists()
    assert [e.container_id[:3] for e in env.manager.inspect_network(net).endpoints] == ["one"]


def test_restore_replaces_a_half_pair_the_kernel_has_not_reaped_yet(env: Env) -> None:
    net = env.network("stale")
    one = env.container("one", (net, [], None))
    before = set(bridge.our_links())
    two = env.container("two", (net, [], None))
    (stale,) = set(bridge.our_links()) - before  # two's host veth
    env.manager.close()
    # the kernel drops the namespace's veth pairs asynchronously: let it, then put a leftover of
    # that name back, as a restore racing the reaping finds it
    netns.delete(two.path)
    deadline = time.monotonic() + 10
    while stale in bridge.our_links() and time.monotonic() < deadline:
        time.sleep(0.01)
    subprocess.run(["ip", "link", "add", stale, "type", "veth", "peer", "name", f"{stale[:11]}p"], check=True)
    env.manager = env.open()
    env.manager.restore()
    assert env.ping(two, one.endpoints[0].address)
    assert env.lookup(one, "two").returncode == 0  # the records survived: DNS still knows two


def test_doctor_reports_and_removes_only_ours(env: Env) -> None:
    net = env.network("doc")
    config = env.manager.inspect_network(net).config
    stray = netns.netns_dir(env.root) / "stray"
    netns.create(stray)
    foreign = f"stkbtest{env.token}"
    bridge.ensure_bridge(foreign, IPv4Interface("169.254.77.1/32"), internal=True)
    env.bridges.append(foreign)
    env.state.delete_network(net)  # the record is lost: its bridge and our table are orphans now
    found = {(o.kind, o.name): o for o in env.manager.doctor()}
    assert not found[(OrphanKind.BRIDGE, config.bridge)].foreign
    assert found[(OrphanKind.BRIDGE, foreign)].foreign
    assert (OrphanKind.NETNS, str(stray)) in found
    assert (OrphanKind.NFT_TABLE, Firewall(env.root).table) in found
    fixed = {(o.kind, o.name): o.removed for o in env.manager.doctor(fix=True)}
    assert fixed[(OrphanKind.BRIDGE, config.bridge)] and not fixed[(OrphanKind.BRIDGE, foreign)]
    assert not stray.exists() and config.bridge not in bridge.our_links()
    bridge.delete_bridge(foreign)


def test_accepts_go_into_a_foreign_drop_forward_chain(env: Env) -> None:
    env.manager.close()
    env.foreign = env.fake_foreign  # a Docker-like table of the test's own, not the host's
    env.manager = env.open()
    net = env.network("dock")
    ours = env.manager.inspect_network(net).config.bridge
    table = env.foreign.table
    # Drops only our bridge's forwarded traffic, so nothing else on the host is disturbed.
    _nft(
        f"table ip {table} {{\n chain DOCKER-USER {{ }}\n"
        " chain FORWARD { type filter hook forward priority 0; policy drop;"
        f' iifname != "{ours}" oifname != "{ours}" accept; jump DOCKER-USER; }}\n}}\n'
    )
    env.network("dock2")  # any change re-syncs
    chain = _text("nft", "list", "chain", "ip", table, "DOCKER-USER")
    marker = f'comment "stackup:{Firewall(env.root).table}"'
    assert f'iifname "{ours}" accept {marker}' in chain and f'oifname "{ours}" accept {marker}' in chain
    assert len(env.foreign.ours(Firewall(env.root).table)) == 4
    for record in env.manager.list_networks():
        env.manager.remove_network(record.name)
    assert "stackup:" not in _text("nft", "list", "table", "ip", table)


def test_engines_of_two_roots_never_pick_the_same_subnet(env: Env, tmp_path: Path) -> None:
    """Two engines sharing one address pool, creating networks at the same moment: each subnet is
    claimed by one of them only (the chaos run once saw both pick one and the DNS bind fail)."""
    other_root = tmp_path / "other-root"
    other_root.mkdir()
    other = Env(other_root)
    other.pool = env.pool
    other.manager.close()
    other.manager = other.open()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def make(target: Env) -> None:
        try:
            start.wait()
            for index in range(4):
                target.network(f"race{index}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=make, args=(e,)) for e in (env, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        subnets = [
            m.inspect_network(r.name).config.subnet
            for m in (env.manager, other.manager)
            for r in m.list_networks()
        ]
        assert len(subnets) == 8
        assert len(set(subnets)) == 8, subnets
    finally:
        problems = other.cleanup()
        assert not problems, problems
        assert not other.leftovers()
