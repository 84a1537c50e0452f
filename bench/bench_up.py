"""`up -d`, no-op `up -d` and `down` of a 10- and a 50-service stack: stackup vs the peers, one run.

Peers are the ones `../shared/peers/setup.sh` installs (docker-compose 1.29 on Docker Engine,
podman-compose on Podman), each with the same busybox image `stackup-bench/busybox:latest`.
Services run `sleep 600` with `init: true` (busybox as PID 1 ignores SIGTERM otherwise) on the
project's default network. The 10-service stack is a dependency chain; the 50-service stack a tree
(`s<i>` depends on `s<(i-1)//3>`), as in `shared/reference/peer-baselines.md`.

Run as root: `python bench/bench_up.py [--tools stackup,docker-compose,podman-compose] [--runs 2]`.
Writes bench/results/up.json and bench/results/up.png; prints ratios (peer time / stackup time).
A tool that is not installed is reported as missing, not silently skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGE = "stackup-bench/busybox:latest"
RESULTS = Path(__file__).parent / "results"


def stack(n: int, shape: str) -> str:
    lines = ["services:"]
    for i in range(n):
        lines += [f"  s{i}:", f"    image: {IMAGE}", "    command: sleep 600", "    init: true"]
        if i:
            parent = i - 1 if shape == "chain" else (i - 1) // 3
            lines += ["    depends_on:", f"      - s{parent}"]
    return "\n".join(lines) + "\n"


def own_subnet() -> str:
    """A `networks:` section giving the default network a random 10.x/24 of its own.

    On a machine shared with other engines, a network left half-removed by one of them (its
    address gone, its DNS socket still bound) can make the next automatic subnet unusable for
    everyone; an explicit one sidesteps that, for stackup and the peers alike.
    """
    second, third = random.randrange(150, 250), random.randrange(0, 256)
    return f"networks:\n  default:\n    ipam:\n      config:\n        - subnet: 10.{second}.{third}.0/24\n"


def command(tool: str) -> list[str]:
    if tool == "stackup":
        return [sys.executable, "-m", "stackup"]
    return [tool]


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def bench_tool(tool: str, n: int, shape: str, runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"up": [], "noop_up": [], "down": []}
    with tempfile.TemporaryDirectory(prefix=f"bench{n}") as tmp:
        cwd = Path(tmp) / f"bench{n}{shape}"
        cwd.mkdir()
        (cwd / "docker-compose.yml").write_text(stack(n, shape))
        base = command(tool)
        for _ in range(runs):
            out["up"].append(timed([*base, "up", "-d"], cwd, env))
            out["noop_up"].append(timed([*base, "up", "-d"], cwd, env))
            out["down"].append(timed([*base, "down", "-t", "1"], cwd, env))
    return out


def engine_rss_mb(env: dict[str, str]) -> float | None:
    proc = subprocess.run([*command("stackup"), "engine", "status", "--format", "json"], env=env,
                          capture_output=True, text=True, check=False)
    try:
        info = json.loads(proc.stdout).get("info") or {}
    except json.JSONDecodeError:
        return None
    rss = info.get("rss_bytes")
    return round(rss / 2**20, 1) if rss else None


def plot(results: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = sorted(results)
    phases = ("up", "noop_up", "down")
    fig, axes = plt.subplots(1, len(stacks), figsize=(6 * len(stacks), 4), squeeze=False)
    for ax, name in zip(axes[0], stacks, strict=True):
        tools = sorted(results[name])
        width = 0.8 / len(tools)
        for j, tool in enumerate(tools):
            values = [results[name][tool].get(p, 0.0) for p in phases]
            ax.bar([k + j * width for k in range(len(phases))], values, width, label=tool)
        ax.set_xticks([k + width * (len(tools) - 1) / 2 for k in range(len(phases))], phases)
        ax.set_ylabel("seconds (median)")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", default="stackup,docker-compose,podman-compose")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("STACKUP_ROOT", tempfile.mkdtemp(prefix="stackup-bench-"))
    subprocess.run([*command("stackup"), "image", "bootstrap", "busybox", IMAGE], env=env, check=True,
                   capture_output=True)
    results: dict[str, dict[str, dict[str, float]]] = {}
    missing = []
    for n, shape in ((10, "chain"), (50, "tree")):
        name = f"{n} services ({shape})"
        results[name] = {}
        for tool in args.tools.split(","):
            if tool != "stackup" and shutil.which(tool) is None:
                missing.append(tool)
                continue
            runs = bench_tool(tool, n, shape, args.runs, env)
            results[name][tool] = {k: round(statistics.median(v), 3) for k, v in runs.items()}
            cells = "  ".join(f"{k} {v:6.2f}s" for k, v in results[name][tool].items())
            print(f"{name:22} {tool:15} {cells}")
    ratios = {
        name: {
            tool: {k: round(v / by_tool["stackup"][k], 1) for k, v in times.items() if by_tool["stackup"][k]}
            for tool, times in by_tool.items() if tool != "stackup"
        }
        for name, by_tool in results.items() if "stackup" in by_tool
    }
    summary = {
        "results_s": results,
        "peer_over_stackup": ratios,
        "engine_idle_rss_mb": engine_rss_mb(env),
        "missing_tools": sorted(set(missing)),
        "targets": {"50_up_speedup_vs_docker_compose": 4.0, "noop_up_s": 0.3, "engine_rss_mb": 80},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "up.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(results, RESULTS / "up.png")
    print(json.dumps({"peer_over_stackup": ratios, "engine_idle_rss_mb": summary["engine_idle_rss_mb"]},
                     indent=2))
    subprocess.run([*command("stackup"), "engine", "stop"], env=env, check=False, capture_output=True)


if __name__ == "__main__":
    main()
