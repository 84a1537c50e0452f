"""`up -d` and `down` of 30 and 50 services against the floor and docker-compose, in one run.

The floor is what the OCI runtime alone needs for the same containers, with the same
parallelism as stackup's executor (16 workers), and no dependency order (which only lowers it):
per container the network floor of `bench_network.py` (netns + veth into a bridge + address +
routes, plain pyroute2 in process), an overlay rootfs over the same busybox tree, and
`<runtime> create` + `<runtime> start` of a bundle written by the engine's own writer (Docker's
defaults, seccomp precompiled for crun, `sleep 600` under catatonit as stackup's services run).
Bundles are written before the clock starts: the floor is the kernel and the runtime only.
The floor's `down` is `<runtime> delete --force` + unmount + namespace teardown per container.

stackup and docker-compose are timed end to end (`up -d`, then `down -t 1`) on the 30- and
50-service tree of `bench_up.py`. Rounds alternate floor / stackup / docker-compose so load from
other work on the machine hits all alike; the medians are reported with the 1-minute load
average. Needs root. Run: `python bench/bench_floor.py [--runs 3] [--sizes 30,50]
[--tools stackup,docker-compose]`. Writes bench/results/floor.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from bench_network import floor_container, private_subnet
from bench_up import IMAGE, command, own_subnet, stack, timed
from pyroute2 import IPRoute

from stackup.net import bridge, names
from stackup.runtime.engine.containers import cgroups, ociruntime, seccomp_bpf
from stackup.runtime.engine.containers.config import ContainerConfig, NetworkMode
from stackup.runtime.engine.containers.oci import write_bundle
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.engine.images.testimage import build_busybox_rootfs
from stackup.runtime.wire.paths import EnginePaths

RESULTS = Path(__file__).parent / "results" / "floor.json"
PARALLEL = 16  # stackup.planner.execute.DEFAULT_PARALLEL


class Floor:
    """N containers made and removed by the runtime directly; bundles prepared up front."""

    def __init__(self, work: Path, n: int) -> None:
        self.work = work
        self.n = n
        self.paths = EnginePaths(work / "root")
        self.rt = ociruntime.configured(self.paths)
        self.rt = ociruntime.OciRuntime(
            name=self.rt.name, binary=self.rt.binary, root=work / "rt", engine_root=work, hides=self.rt.hides
        )
        self.lower = work / "busybox"
        if not self.lower.exists():
            build_busybox_rootfs(self.lower)
        self.token = secrets.token_hex(3)
        self.bridge = names.bridge_name(f"floor-{self.token}")
        self.cgroup_parent = f"/stackup-floor-{self.token}"
        subnet = private_subnet()
        self.gateway = subnet.network_address + 1
        self.netns_dir = work / "netns"
        self.netns_dir.mkdir(exist_ok=True)
        self.local = threading.local()
        self.cache = seccomp_bpf.cache_for(work / "seccomp") if self.rt.takes_seccomp_bpf else None
        self.ids = [f"floor-{self.token}-{i}" for i in range(n)]

    def netns(self, i: int) -> Path:
        return self.netns_dir / f"c{i}"

    def bundle(self, i: int) -> Path:
        return self.work / "bundles" / self.ids[i]

    def prepare(self) -> None:
        bridge.ensure_bridge(self.bridge, IPv4Interface((self.gateway, 22)), internal=False)
        self.master = socket.if_nametoindex(self.bridge)
        for i, cid in enumerate(self.ids):
            cfg = ContainerConfig(
                id=cid, name=f"floor{i}", rootfs=self.bundle(i) / "rootfs", args=("sleep", "600"), init=True,
                env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                network_mode=NetworkMode.PATH, netns_path=self.netns(i), cgroup_parent=self.cgroup_parent,
            )  # fmt: skip
            write_bundle(cfg, self.bundle(i), seccomp_bpf=self.cache)

    def _ipr(self) -> Any:
        if not hasattr(self.local, "ipr"):
            self.local.ipr = IPRoute()  # one host socket per worker, held for the run
        return self.local.ipr

    def _call(self, *args: str) -> None:
        devnull = subprocess.DEVNULL
        argv = self.rt.argv(*args)
        self.rt.in_view(
            lambda: subprocess.run(argv, stdin=devnull, stdout=devnull, stderr=devnull, check=True)
        )

    def _up_one(self, i: int) -> None:
        address = IPv4Interface((self.gateway + 1 + i, 22))
        floor_container(self.netns(i), self._ipr(), self.master, address, IPv4Address(self.gateway))
        bundle = self.bundle(i)
        mount_rootfs([self.lower], bundle / "upper", bundle / "work", bundle / "rootfs")
        self._call("create", "-b", str(bundle), self.ids[i])
        self._call("start", self.ids[i])

    def _down_one(self, i: int) -> None:
        self._call("delete", "--force", self.ids[i])
        unmount_rootfs(self.bundle(i) / "rootfs")
        bridge.unplug_namespace(self.netns(i), [names.veth_name(f"{self.netns(i)}:eth0")])
        shutil.rmtree(self.bundle(i) / "upper", ignore_errors=True)
        shutil.rmtree(self.bundle(i) / "work", ignore_errors=True)

    def _all(self, action: Any) -> float:
        started = time.perf_counter()
        with cf.ThreadPoolExecutor(PARALLEL) as pool:
            for future in [pool.submit(action, i) for i in range(self.n)]:
                future.result()
        return time.perf_counter() - started

    def up(self) -> float:
        return self._all(self._up_one)

    def down(self) -> float:
        return self._all(self._down_one)

    def cleanup(self) -> None:
        """Whatever a failed round left: containers, mounts, namespaces, the bridge, cgroups."""
        for i, cid in enumerate(self.ids):
            argv = self.rt.argv("delete", "--force", cid)
            self.rt.in_view(lambda a=argv: subprocess.run(a, capture_output=True, check=False))
            unmount_rootfs(self.bundle(i) / "rootfs")
            if self.netns(i).exists():
                bridge.unplug_namespace(self.netns(i), [names.veth_name(f"{self.netns(i)}:eth0")])
        bridge.delete_bridge(self.bridge)
        for cid in self.ids:
            cgroups.remove(f"{self.cgroup_parent}/{cid}")
        cgroups.remove_if_empty(self.cgroup_parent)


def tool_round(tool: str, project: Path, env: dict[str, str]) -> tuple[float, float]:
    base = command(tool)
    quiet = ["--progress", "quiet"] if tool == "stackup" else []
    up = timed([*base, *quiet, "up", "-d"], project, env)
    down = timed([*base, *quiet, "down", "-t", "1"], project, env)
    return up, down


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="30,50")
    parser.add_argument("--tools", default="stackup,docker-compose")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_floor needs root")
    tools = [t for t in args.tools.split(",") if t == "stackup" or shutil.which(t)]
    env = dict(os.environ)
    env.setdefault("STACKUP_ROOT", tempfile.mkdtemp(prefix="stackup-bench-"))
    subprocess.run([*command("stackup"), "image", "bootstrap", "busybox", IMAGE], env=env, check=True,
                   capture_output=True)
    load = [round(os.getloadavg()[0], 2)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stackup-floor-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            samples: dict[str, list[float]] = {k: [] for k in ("floor_up", "floor_down")}
            for tool in tools:
                samples[f"{tool}_up"], samples[f"{tool}_down"] = [], []
            project = Path(tmp) / f"floor{n}"
            project.mkdir()
            (project / "docker-compose.yml").write_text(stack(n, "tree") + own_subnet())
            floor = Floor(Path(tmp), n)
            try:
                floor.prepare()
                for _ in range(args.runs):
                    samples["floor_up"].append(floor.up())
                    samples["floor_down"].append(floor.down())
                    for tool in tools:
                        up, down = tool_round(tool, project, env)
                        samples[f"{tool}_up"].append(up)
                        samples[f"{tool}_down"].append(down)
                    load.append(round(os.getloadavg()[0], 2))
            finally:
                floor.cleanup()
            med = {k: round(statistics.median(v), 3) for k, v in samples.items()}
            row: dict[str, Any] = {"median_s": med, "samples_s": {k: [round(x, 3) for x in v]
                                                                   for k, v in samples.items()}}
            if "stackup" in tools:
                row["stackup_up_over_floor"] = round(med["stackup_up"] / med["floor_up"], 2)
                if "docker-compose" in tools:
                    row["docker_compose_down_over_stackup"] = round(
                        med["docker-compose_down"] / med["stackup_down"], 2
                    )
                    row["docker_compose_up_over_stackup"] = round(
                        med["docker-compose_up"] / med["stackup_up"], 2
                    )
            results[f"{n} services"] = row
            shown = {k: v for k, v in row.items() if k != "samples_s"}
            print(f"{n} services: {json.dumps(shown)}", flush=True)
    summary = {
        "command": "python bench/bench_floor.py " + " ".join(sys.argv[1:]),
        "runtime": ociruntime.configured(EnginePaths(Path(env["STACKUP_ROOT"]))).describe(),
        "parallel": PARALLEL,
        "loadavg_1m_per_round": load,
        "results": results,
        "targets": {"stackup_up_over_floor_max": 1.5, "docker_compose_down_over_stackup_min": 5.0},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    subprocess.run([*command("stackup"), "engine", "stop"], env=env, check=False, capture_output=True)


if __name__ == "__main__":
    main()
