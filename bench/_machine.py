"""What one engine root has on the machine: the leak check of the chaos and reboot runs.

After `stackup down -v` of every project, a root must hold no bridge or veth (links tagged with
the root's alias), netns file, mount, container cgroup, firewall rule beyond the empty table,
OCI runtime container, conmon, state row (containers, networks, volumes, IP leases, endpoints,
published ports) or container directory (each container's upper and work layers live there).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path

from stackup.net import netns
from stackup.net.firewall import Firewall
from stackup.runtime.engine.containers import conmon
from stackup.runtime.engine.containers.config import default_cgroup_parent
from stackup.runtime.engine.network.doctor import tag_of
from stackup.runtime.wire.paths import EnginePaths

STATE_TABLES = ("containers", "networks", "volumes", "ip_leases", "net_endpoints", "net_ports")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _text(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def links(paths: EnginePaths) -> list[str]:
    tag = tag_of(Firewall(paths.root).table)
    return [
        line.split(": ")[1].split("@")[0]
        for line in _text("ip", "-o", "link").splitlines()
        if f"alias {tag}" in line and ": stk" in line
    ]


def mounts(root: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


def cgroups(root: Path) -> list[str]:
    """Container cgroups under this root's parent, in every hierarchy (v1 or v2)."""
    parent = default_cgroup_parent(root).lstrip("/")
    found: list[str] = []
    for hierarchy in [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir())]:
        directory = hierarchy / parent
        if directory.is_dir():
            found += [str(child) for child in directory.iterdir() if child.is_dir()]
    return sorted(set(found))


def firewall_rules(root: Path) -> int:
    """Rules in the root's nftables table (chains and sets alone are the empty table)."""
    table = Firewall(root).table
    listing = _text("nft", "-j", "list", "table", "inet", table)
    if not listing.strip():
        return 0
    return sum(1 for item in json.loads(listing).get("nftables", []) if "rule" in item)


def conmons(root: Path) -> list[str]:
    return [
        line for line in _text("ps", "-eo", "pid,args").splitlines() if "conmon" in line and str(root) in line
    ]


def state_rows(paths: EnginePaths) -> dict[str, int]:
    if not paths.state_db.exists():
        return {}
    counts: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(f"file:{paths.state_db}?mode=ro", uri=True, timeout=10)) as db:
        for table in STATE_TABLES:
            with contextlib.suppress(sqlite3.OperationalError):
                counts[table] = int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    return {t: n for t, n in counts.items() if n}


def leftovers(paths: EnginePaths, *, baseline_rules: int = 0) -> list[str]:
    """Everything of this root still on the machine that a clean `down -v` would have removed."""
    found = [f"link {name}" for name in links(paths)]
    found += [f"mount {point}" for point in mounts(paths.root)]
    found += [f"cgroup {path}" for path in cgroups(paths.root)]
    rules = firewall_rules(paths.root)
    if rules > baseline_rules:
        found.append(f"{rules - baseline_rules} nftables rule(s) in {Firewall(paths.root).table}")
    found += [f"OCI runtime container {cid}" for cid in conmon.list_ids(paths=paths)]
    found += [f"conmon {line.strip()}" for line in conmons(paths.root)]
    directory = netns.netns_dir(paths.root)
    found += [f"netns {p.name}" for p in directory.iterdir()] if directory.exists() else []
    found += [f"state rows {table}: {n}" for table, n in state_rows(paths).items()]
    if paths.containers.is_dir():
        trash = paths.containers / ".trash"
        deadline = time.monotonic() + 10
        while trash.exists() and time.monotonic() < deadline:  # removed dirs are deleted in the background
            time.sleep(0.1)
        found += [f"container dir {p.name}" for p in paths.containers.iterdir()]
    return found


def scrub(paths: EnginePaths) -> None:
    """By hand, best effort: remove whatever of this root a failed trial left, so the next
    trial starts clean (what was found is reported before this runs)."""
    from stackup.errors import StackupError
    from stackup.runtime.engine import linux
    from stackup.runtime.engine.containers import cgroups as cg

    directory = netns.netns_dir(paths.root)
    for cid in conmon.list_ids(paths=paths):
        with contextlib.suppress(StackupError, OSError):
            conmon.delete(cid, paths=paths)
    for point in reversed(mounts(paths.root)):
        with contextlib.suppress(StackupError, OSError):
            linux.umount(point)
    for path in sorted(directory.iterdir()) if directory.exists() else []:
        with contextlib.suppress(StackupError, OSError):
            netns.delete(path)
    for name in links(paths):
        _text("ip", "link", "del", name)
    for path in cgroups(paths.root):
        with contextlib.suppress(OSError):
            Path(path).rmdir()
    with contextlib.suppress(StackupError, OSError):
        cg.remove_if_empty(default_cgroup_parent(paths.root))
