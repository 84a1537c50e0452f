"""A kernel lab for network tests: bridges, namespaces and processes that are always removed.

Every name is derived from a per-run random token, and subnets are drawn at random from
10.128.0.0/9 away from the host's routes, so two runs (or a crashed earlier run) never collide.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from stackup.net import bridge, names, netns
from stackup.net.firewall import Firewall
from stackup.runtime.engine.network.foreign import ForeignFilter

BUSYBOX = "/bin/busybox"


class Lab:
    """Creates kernel objects for one test and remembers them for teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.bridges: list[str] = []
        self.namespaces: list[Path] = []
        self.veths: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.firewall = Firewall(root)
        # Where Docker's FORWARD drop policy is in force (br_netfilter sends bridged frames
        # through it), the lab's bridges need the same accepts the engine gives its own.
        self.foreign = ForeignFilter()
        self._subnets: list[IPv4Network] = []

    def subnet(self) -> IPv4Network:
        """A random /24 that overlaps no host route and no other subnet of this lab."""
        taken = [r for r in bridge.host_routes() if r.prefixlen > 0] + self._subnets
        for _ in range(1000):
            candidate = IPv4Network((random.randrange(0x0A800000, 0x0B000000) & ~0xFF, 24))
            if not any(candidate.overlaps(other) for other in taken):
                self._subnets.append(candidate)
                return candidate
        raise RuntimeError("no free test subnet")

    def bridge(self, label: str, *, internal: bool = False) -> tuple[str, IPv4Network]:
        name = names.bridge_name(f"test-{self.token}-{label}")
        subnet = self.subnet()
        self.bridges.append(name)
        bridge.ensure_bridge(name, IPv4Interface((subnet.network_address + 1, 24)), internal=internal)
        self.foreign.sync(self.firewall.table, self.bridges)
        return name, subnet

    def container(self, label: str, br: str, subnet: IPv4Network, host: int, *, route: bool = True) -> Path:
        """A namespace plugged into `br` at `subnet`.<host>, default route via .1 if `route`."""
        path = netns.netns_dir(self.root) / f"{label}-{self.token}"
        netns.create(path)
        self.namespaces.append(path)
        gateway = subnet.network_address + 1 if route else None
        address = IPv4Interface((subnet.network_address + host, 24))
        self.veths.append(bridge.attach(path, br, "eth0", address, gateway))
        return path

    def spawn(self, path: Path, *argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            ["nsenter", f"--net={path}", BUSYBOX, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def run(self, path: Path, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--net={path}", BUSYBOX, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def httpd(self, path: Path, port: int, body: str) -> None:
        """busybox httpd serving `body` at /index.html, waited for until it accepts."""
        docroot = self.root / f"www-{secrets.token_hex(3)}"
        docroot.mkdir()
        (docroot / "index.html").write_text(body)
        self.spawn(path, "httpd", "-f", "-p", str(port), "-h", str(docroot))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with netns.enter(path), socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("httpd did not start")

    def cleanup(self) -> list[str]:
        """Remove everything, collecting failures instead of stopping at the first one."""
        problems: list[str] = []
        for process in self.processes:
            process.kill()
            process.wait()
        steps = [
            *(lambda v=v: bridge.detach(v) for v in self.veths),
            *(lambda p=p: netns.delete(p) for p in self.namespaces),
            *(lambda b=b: bridge.delete_bridge(b) for b in self.bridges),
            self.firewall.destroy,
            lambda: self.foreign.remove(self.firewall.table),
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:
                problems.append(repr(exc))
        return problems

    def leftovers(self) -> list[str]:
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
        found = [
            name for name in (*self.bridges, *self.veths) if f" {name}:" in links or f" {name}@" in links
        ]
        if self.firewall.table in tables:
            found.append(self.firewall.table)
        found += [str(p) for p in self.namespaces if p.exists()]
        found += self.foreign.ours(self.firewall.table)
        return found


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, bridges and nftables")


@pytest.fixture
def lab(stackup_root: Path) -> Iterator[Lab]:
    _require_root()
    made = Lab(stackup_root)
    try:
        yield made
    finally:
        problems = made.cleanup()
        leftovers = made.leftovers()
        assert not problems, problems
        assert not leftovers, f"left behind: {leftovers}"


def ping(lab: Lab, path: Path, target: IPv4Address, *, expect: bool = True) -> bool:
    """One echo answered within a second. A loaded machine can lose the very first one (ARP on a
    port that just came up), so an expected answer gets two more tries; an expected silence not."""
    for _ in range(3 if expect else 1):
        if lab.run(path, "ping", "-c", "1", "-W", "1", str(target)).returncode == 0:
            return True
    return False
