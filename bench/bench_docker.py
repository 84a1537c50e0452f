"""stackup over Docker vs docker-compose on the same daemon: `up -d`, no-op `up -d`, `down`.

The stacks are bench_up.py's (10 services in a chain, 50 in a tree; busybox `sleep 600` with
`init: true`). Every timed command is a fresh process of the real CLI (`stackup --runtime docker`,
`docker-compose`), as a user would run it, so interpreter start-up and imports count for both.

Fairness on a shared, loaded machine: the tools alternate phase by phase (stackup's `up -d`, then
docker-compose's, ...), and which one goes first alternates by run, so a load spike from other
processes falls on both rather than on whichever ran in that minute. Both run from cached bytecode:
Debian's docker-compose ships its .pyc files; stackup gets a private PYTHONPYCACHEPREFIX warmed
before timing (an environment with PYTHONDONTWRITEBYTECODE=1 would otherwise make every stackup
process compile ~100 modules from source, which no installed copy does).

Run as root with a Docker daemon (`/work/shared/peers/setup.sh`):
`python bench/bench_docker.py [--runs 3]`. Writes bench/results/docker.json with the medians and
the ratios docker-compose / stackup. A timed command that fails is reported with its error, not a
time, and leaves no ratio for that cell.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_up import IMAGE, stack

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent

STACKUP = [sys.executable, "-m", "stackup", "--runtime", "docker"]
TOOLS = {"stackup-docker": STACKUP, "docker-compose": ["docker-compose"]}
PHASES = (
    ("up", ["up", "-d"]),
    ("noop_up", ["up", "-d"]),
    ("noop_up_full", ["up", "-d"]),  # stackup only: the planner path (a root without the shortcut's cache)
    ("down", ["down", "-t", "1"]),
)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float | str:
    """Seconds, or the failure (exit code and the end of stderr) when the command failed."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        return f"FAILED ({proc.returncode}): {' '.join(argv[-3:])}: {proc.stderr.strip()[-600:]}"
    return elapsed


def bench(n: int, shape: str, runs: int, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Both tools on the same stack shape, phase by phase in turn; medians per tool and phase."""
    times: dict[str, dict[str, list[float]]] = {t: {p: [] for p, _ in PHASES} for t in TOOLS}
    errors: dict[str, dict[str, str]] = {t: {} for t in TOOLS}
    with tempfile.TemporaryDirectory(prefix="bench-docker") as tmp:
        dirs = {}
        for tool in TOOLS:
            dirs[tool] = Path(tmp) / f"bd{tool.replace('-', '')[:8]}{n}"
            dirs[tool].mkdir()
            (dirs[tool] / "compose.yaml").write_text(stack(n, shape))
        try:
            for run in range(runs):
                order = list(TOOLS) if run % 2 == 0 else list(reversed(TOOLS))
                for phase, args in PHASES:
                    for tool in order:
                        if phase == "noop_up_full" and tool != "stackup-docker":
                            continue
                        extra = {"STACKUP_ROOT": tempfile.mkdtemp(dir=tmp)} if phase == "noop_up_full" else {}
                        result = timed([*TOOLS[tool], *args], dirs[tool], {**env, **extra})
                        if isinstance(result, str):
                            errors[tool][phase] = result
                        else:
                            times[tool][phase].append(result)
        finally:  # whatever failed, leave nothing behind on the daemon
            for tool, argv in TOOLS.items():
                subprocess.run([*argv, "down", "-t", "0"], cwd=dirs[tool], env=env, capture_output=True,
                               check=False)
    out: dict[str, dict[str, Any]] = {}
    for tool in TOOLS:
        row: dict[str, Any] = {p: round(statistics.median(v), 3) for p, v in times[tool].items() if v}
        row.update({p: e for p, e in errors[tool].items() if p not in row})
        if errors[tool]:
            row["errors"] = errors[tool]
        out[tool] = row
    return out


def warm_bytecode(env: dict[str, str]) -> None:
    """Compile stackup into the private bytecode cache, as an installed copy comes; docker-compose's
    modules are cached there too on its first run (the prefix hides Debian's own .pyc files)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "stackup")], env=env, check=True,
                   capture_output=True)
    for argv in ([*STACKUP, "--help"], ["docker-compose", "version"], ["docker-compose", "--help"]):
        subprocess.run(argv, env=env, check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "STACKUP_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env["STACKUP_ROOT"] = tempfile.mkdtemp(prefix="stackup-bench-docker-")  # the shortcut's cache
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="stackup-bench-pyc-")
    load_before = os.getloadavg()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    missing = [t for t in ("docker-compose", "docker") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)} (run /work/shared/peers/setup.sh)")
    check = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False)
    if check.returncode != 0:
        raise SystemExit(f"{IMAGE} is not in the Docker daemon (run /work/shared/peers/setup.sh)")
    warm_bytecode(env)
    results: dict[str, dict[str, Any]] = {}
    for n, shape in ((10, "chain"), (50, "tree")):
        name = f"{n} services ({shape})"
        results[name] = bench(n, shape, args.runs, env)
        for tool, row in results[name].items():
            cells = "  ".join(
                f"{p} {row[p]:6.2f}s" if isinstance(row[p], float) else f"{p} FAILED"
                for p, _ in PHASES
                if p in row
            )
            print(f"{name:20} {tool:15} {cells}  (load {os.getloadavg()[0]:.1f})", flush=True)
    ratios = {
        name: {
            phase: round(by["docker-compose"][phase] / by["stackup-docker"][phase], 2)
            for phase, _ in PHASES
            if isinstance(by["docker-compose"].get(phase), float)
            and isinstance(by["stackup-docker"].get(phase), float)
        }
        for name, by in results.items()
    }
    docker_version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                    capture_output=True, text=True, check=False).stdout.strip()
    compose_version = subprocess.run(["docker-compose", "version", "--short"], capture_output=True, text=True,
                                     check=False).stdout.strip()
    summary = {
        "results_s": results,
        "docker_compose_over_stackup": ratios,
        "runs": args.runs,
        "stackup_command": "python -m stackup --runtime docker",
        "versions": {"docker": docker_version, "docker-compose": compose_version},
        "target": "stackup at least 2x faster on each phase",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "notes": (
            "noop_up: stackup's no-op shortcut (cli/fastpath.py) with the Docker snapshot "
            "(runtime/docker/snapshot.py); noop_up_full: the whole planner path (load, observe, "
            "reconcile) from a root without the shortcut's cache. The ratio for noop_up compares "
            "docker-compose with the shortcut. Tools alternate phase by phase."
        ),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "docker.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"docker_compose_over_stackup": ratios}, indent=2))


if __name__ == "__main__":
    main()
