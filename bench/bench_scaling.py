"""How cost grows with the stack: `up -d`, no-op `up -d` and `down` at 10, 50, 100 and 200 services.

stackup and the peers (`../shared/peers/setup.sh`: docker-compose on Docker Engine, podman-compose
on Podman) on the tree stack of `bench_up.py` (`s<i>` depends on `s<(i-1)//3>`, busybox
`sleep 600` under `init: true`). Each size runs every tool in turn (`--runs` rounds, medians), so
load from other work on the machine hits all alike; the 1-minute load average is recorded per
size. After stackup's `up -d` at each size the engine's RSS with those containers running is
read from `engine status`. Peers can be capped (`--peer-max 100`) when the largest sizes take too
long. Needs root. Run: `python bench/bench_scaling.py [--sizes 10,50,100,200] [--runs 1]
[--tools stackup,docker-compose,podman-compose] [--peer-max N]`.
Writes bench/results/scaling.json and bench/results/scaling.png (time against services).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_up import IMAGE, command, engine_rss_mb, own_subnet, stack, timed

RESULTS = Path(__file__).parent / "results"
PHASES = ("up", "noop_up", "down")


def linear_fit(xs: list[int], ys: list[float]) -> dict[str, float]:
    """Least squares y = a + b x and R^2: how close to linear the growth is."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return {"intercept_s": round(a, 3), "per_service_ms": round(b * 1000, 2),
            "r2": round(1 - ss_res / ss_tot, 4) if ss_tot else 1.0}  # fmt: skip


def one_size(tool: str, n: int, runs: int, env: dict[str, str], work: Path) -> dict[str, Any]:
    project = work / f"scale{n}"
    project.mkdir(parents=True, exist_ok=True)
    (project / "docker-compose.yml").write_text(stack(n, "tree") + own_subnet())
    base = command(tool)
    quiet = ["--progress", "quiet"] if tool == "stackup" else []
    samples: dict[str, list[float]] = {p: [] for p in PHASES}
    errors: list[str] = []
    rss = None
    try:
        for _ in range(runs):
            samples["up"].append(timed([*base, *quiet, "up", "-d"], project, env))
            samples["noop_up"].append(timed([*base, *quiet, "up", "-d"], project, env))
            if tool == "stackup":
                rss = engine_rss_mb(env)
            samples["down"].append(down_timed(base, quiet, project, env, errors))
    finally:  # a failed round must not leave containers behind for the next tool
        subprocess.run([*base, *quiet, "down", "-t", "1"], cwd=project, env=env, capture_output=True,
                       check=False)  # fmt: skip
    out: dict[str, Any] = {p: round(statistics.median(v), 3) for p, v in samples.items()}
    if rss is not None:
        out["engine_rss_mb_running"] = rss
    if errors:
        out["down_errors"] = errors
    return out


def down_timed(
    base: list[str], quiet: list[str], project: Path, env: dict[str, str], errors: list[str]
) -> float:
    """`down -t 1`, timed. docker-compose 1.29 sometimes fails to remove the network right after
    its last container ("has active endpoints"): the containers are gone by then, so the time
    counts, the error is recorded, and a second (untimed) `down` removes the network."""
    argv = [*base, *quiet, "down", "-t", "1"]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        if base[0] == sys.executable:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        errors.append((proc.stderr.strip().splitlines() or ["?"])[-1][:200])
        subprocess.run(argv, cwd=project, env=env, capture_output=True, check=False)
    return elapsed


def plot(results: dict[str, dict[int, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PHASES), figsize=(5 * len(PHASES), 4), squeeze=False)
    for ax, phase in zip(axes[0], PHASES, strict=True):
        for tool, by_size in sorted(results.items()):
            sizes = sorted(by_size)
            ax.plot(sizes, [by_size[n][phase] for n in sizes], marker="o", label=tool)
        ax.set_xlabel("services")
        ax.set_ylabel("seconds (median)")
        ax.set_title(phase.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,50,100,200")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--tools", default="stackup,docker-compose,podman-compose")
    parser.add_argument("--peer-max", type=int, default=0, help="largest size the peers run (0: all)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_scaling needs root")
    sizes = [int(s) for s in args.sizes.split(",")]
    tools = [t for t in args.tools.split(",") if t == "stackup" or shutil.which(t)]
    env = dict(os.environ)
    env.setdefault("STACKUP_ROOT", tempfile.mkdtemp(prefix="stackup-bench-"))
    subprocess.run([*command("stackup"), "image", "bootstrap", "busybox", IMAGE], env=env, check=True,
                   capture_output=True)  # fmt: skip
    results: dict[str, dict[int, dict[str, Any]]] = {tool: {} for tool in tools}
    load: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="stackup-scaling-") as tmp:
        for n in sizes:
            load[n] = round(os.getloadavg()[0], 2)
            for tool in tools:
                if tool != "stackup" and args.peer_max and n > args.peer_max:
                    continue
                results[tool][n] = one_size(tool, n, args.runs, env, Path(tmp) / tool.replace("-", ""))
                print(f"{n:4} services {tool:15} {json.dumps(results[tool][n])}", flush=True)
    fits = {
        tool: {p: linear_fit(sorted(by), [by[n][p] for n in sorted(by)]) for p in PHASES}
        for tool, by in results.items() if len(by) >= 2
    }
    summary = {
        "command": "python bench/bench_scaling.py " + " ".join(sys.argv[1:]),
        "stack": "tree (s<i> depends on s<(i-1)//3>), busybox sleep 600, init: true",
        "loadavg_1m_at_size": load,
        "results_s": {tool: {str(n): v for n, v in by.items()} for tool, by in results.items()},
        "linear_fit": fits,
        "targets": {"stackup_linear": True, "engine_rss_mb_at_200_running": 100},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scaling.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(results, RESULTS / "scaling.png")
    print(json.dumps(fits, indent=2))
    subprocess.run([*command("stackup"), "engine", "stop"], env=env, check=False, capture_output=True)


if __name__ == "__main__":
    main()
