"""Container start latency: stackup's conmon path vs the plain OCI runtime on the same bundle.

What it measures, N times each, on one busybox rootfs with the same generated config.json
(Docker's defaults, seccomp included; for crun also precompiled, as the engine passes it):
  - stackup  `conmon.create` (bundle write + conmon + `<runtime> create`) and `conmon.start`;
  - raw      `<runtime> create` + `<runtime> start` directly (no conmon), and `<runtime> run`
             of `/bin/true` (which also waits for the exit and deletes: an upper bound for
             "start one"), started the way the engine starts the runtime (`OciRuntime.in_view`).
Each installed runtime (crun, the engine's default, and runc) is measured in turn. Needs root.
Everything lives under a temporary STACKUP_ROOT and is deleted as it goes. Prints a table per
runtime and writes bench/results/container_start.json. Run:
`python bench/bench_container_start.py [N]`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from stackup.runtime.engine.containers import cgroups, conmon, ociruntime, seccomp_bpf
from stackup.runtime.engine.containers.config import ContainerConfig
from stackup.runtime.engine.containers.oci import write_bundle
from stackup.runtime.engine.images.testimage import build_busybox_rootfs
from stackup.runtime.wire.paths import EnginePaths

RESULTS = Path(__file__).parent / "results" / "container_start.json"


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "mean_ms": round(statistics.fmean(samples) * 1000, 2),
        "median_ms": round(statistics.median(samples) * 1000, 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
        "min_ms": round(ordered[0] * 1000, 2),
    }


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def quiet(*command: str, check: bool = True) -> None:
    """Run with no stdio, like a detached container would be."""
    devnull = subprocess.DEVNULL
    subprocess.run(command, stdin=devnull, stdout=devnull, stderr=devnull, check=check)


def first_line(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout.split("\n")[0]


def stackup_round(cfg: ContainerConfig, paths: EnginePaths, samples: dict[str, list[float]]) -> None:
    bundle = paths.container(cfg.id).dir
    try:
        created = timed(lambda: conmon.create(cfg, bundle, paths=paths))
        started = timed(lambda: conmon.start(cfg.id, paths=paths))
        samples["stackup_create"].append(created)
        samples["stackup_start"].append(started)
        samples["stackup_create_start"].append(created + started)
        conmon.wait(cfg.id, 20, paths=paths)
    finally:
        conmon.delete(cfg.id, paths=paths)


def raw_round(cfg: ContainerConfig, paths: EnginePaths, samples: dict[str, list[float]]) -> None:
    """The same config.json, driven by the runtime alone (its own --root, no conmon)."""
    rt = ociruntime.configured(paths)
    bundle = paths.container(cfg.id).dir
    cache = seccomp_bpf.cache_for(conmon.RuntimeDirs.of(paths).seccomp) if rt.takes_seccomp_bpf else None
    write_bundle(cfg, bundle, seccomp_bpf=cache)
    raw = replace(rt, root=paths.run / f"{rt.name}-plain")

    def call(*args: str, check: bool = True) -> None:
        raw.in_view(lambda: quiet(*raw.argv(*args), check=check))

    def create_start() -> None:
        call("create", "-b", str(bundle), cfg.id)
        call("start", cfg.id)

    def run() -> None:
        call("run", "-b", str(bundle), cfg.id + "-run")

    try:
        samples["raw_create_start"].append(timed(create_start))
        samples["raw_run"].append(timed(run))
    finally:
        for cid in (cfg.id, cfg.id + "-run"):
            call("delete", "-f", cid, check=False)
        cgroups.remove(cfg.cgroup_path)


def measure(name: ociruntime.RuntimeName, n: int) -> dict[str, object]:
    """N rounds with `name` as the engine's runtime; the summary of each measure."""
    os.environ[ociruntime.ENV] = name.value
    names = ("stackup_create", "stackup_start", "stackup_create_start", "raw_create_start", "raw_run")
    samples: dict[str, list[float]] = {key: [] for key in names}
    with tempfile.TemporaryDirectory(prefix="stackup-bench-") as tmp:
        paths = EnginePaths(Path(tmp) / "root")
        os.environ["STACKUP_ROOT"] = str(paths.root)
        rt = ociruntime.configured(paths)
        rootfs = build_busybox_rootfs(Path(tmp) / "rootfs")
        parent = ""
        for i in range(n):
            cfg = ContainerConfig(
                id=f"bench-{os.getpid()}-{i}", name=f"bench-{i}", rootfs=rootfs, args=("true",)
            )
            parent = cfg.cgroup_parent
            stackup_round(cfg, paths, samples)
            raw_round(cfg, paths, samples)
        cgroups.remove(parent)
    ratio = statistics.median(samples["stackup_create_start"]) / statistics.median(
        samples["raw_create_start"]
    )
    print(f"\nruntime: {rt.describe()}")
    print(f"{'measure':<24}{'mean':>9}{'median':>9}{'p90':>9}{'min':>9}  (ms, N={n})")
    for key, values in samples.items():
        row = summary(values)
        print(f"{key:<24}{row['mean_ms']:>9}{row['median_ms']:>9}{row['p90_ms']:>9}{row['min_ms']:>9}")
    print(f"stackup create+start / {rt.name} create+start (median): {ratio:.2f}x")
    return {
        "runtime": rt.describe(),
        **{key: summary(values) for key, values in samples.items()},
        "ratio_stackup_vs_raw_create_start_median": round(ratio, 2),
    }


def main(n: int) -> None:
    """Every installed runtime, the engine's default (crun when installed) first."""
    installed = [name for name in ociruntime.PREFERENCE if ociruntime.binary_of(name)]
    results: dict[str, object] = {
        "what": "create+start latency of one busybox container, Docker-default config.json incl. seccomp",
        "command": f"python bench/bench_container_start.py {n}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU, kernel {platform.release()}",
        "conmon": first_line("conmon", "--version"),
        "n": n,
        "default_runtime": installed[0].value,
        **{name.value: measure(name, n) for name in installed},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
