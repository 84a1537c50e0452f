"""stackup over Docker vs docker-compose on the same daemon: `up -d`, no-op `up -d`, `down`.

The stacks are bench_up.py's (10 services in a chain, 50 in a tree; busybox `sleep 600` with
`init: true`). Every timed command is a fresh process, as a user would run it, so interpreter
start-up and imports count for both tools. Until the CLI has `--runtime docker`, stackup's side is
this file's `step` sub-command, which does what `stackup up -d` / `down` do (load, observe,
reconcile, execute) over `DockerRuntime`, and for a no-op `up -d` first the CLI's shortcut
(`cli/fastpath.py`) with `engine_snapshot` reading Docker (`runtime/docker/snapshot.py`), as the
CLI will once `--runtime docker` is wired; switching to the CLI is the one line `STACKUP` below.

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

STACKUP = [sys.executable, str(Path(__file__).resolve()), "step"]
# STACKUP = [sys.executable, "-m", "stackup", "--runtime", "docker"]   # once the CLI has the flag
TOOLS = {"stackup-docker": STACKUP, "docker-compose": ["docker-compose"]}
PHASES = (
    ("up", ["up", "-d"], {}),
    ("noop_up", ["up", "-d"], {}),
    ("noop_up_full", ["up", "-d"], {"BENCH_NO_FASTPATH": "1"}),  # stackup only: the planner path
    ("down", ["down", "-t", "1"], {}),
)


def step(argv: list[str]) -> int:
    """`step up -d` / `step down -t N` in the current directory: what the CLI will do."""
    if argv[0] == "up" and not os.environ.get("BENCH_NO_FASTPATH") and _fastpath().try_noop_up(argv) == 0:
        return 0
    from stackup.planner.execute import execute
    from stackup.planner.observed import observe
    from stackup.planner.options import ReconcileOptions
    from stackup.planner.reconcile import reconcile
    from stackup.planner.teardown import plan_down
    from stackup.runtime.docker.runtime import DockerRuntime
    from stackup.spec.loader import LoadOptions, load

    loaded = load(LoadOptions(environ=os.environ))
    name = loaded.project.name
    if argv[0] == "up":
        rt = DockerRuntime.from_env()
        options = ReconcileOptions(
            referenced_files=loaded.referenced_files,
            working_dir=str(loaded.files[0].parent),
            config_files=tuple(str(f) for f in loaded.files),
        )
        plan = reconcile(loaded.project, observe(rt, name), options)
        if plan.has_changes:
            execute(plan, rt).raise_for_failures()
        remember(argv, loaded)
    else:
        timeout = float(argv[argv.index("-t") + 1]) if "-t" in argv else None
        rt = DockerRuntime.from_env(stop_timeout_s=timeout)
        execute(plan_down(observe(rt, name)), rt).raise_for_failures()
    rt.close()
    return 0


def _fastpath() -> Any:
    """The CLI's no-op shortcut with its engine snapshot reading Docker (see the docstring)."""
    from stackup.cli import fastpath
    from stackup.runtime.docker.snapshot import docker_snapshot

    fastpath.engine_snapshot = docker_snapshot
    return fastpath


def remember(argv: list[str], loaded: Any) -> None:
    """After a successful `up -d`, what `stack_cmd._remember_noop` records for the shortcut."""
    fastpath = _fastpath()
    discover, remember, split_up_argv = fastpath.discover, fastpath.remember, fastpath.split_up_argv

    global_args = split_up_argv(argv)
    if global_args is None or loaded.inputs is None or not loaded.inputs.complete:
        return
    stack_files, env_files = discover(global_args, Path.cwd())
    if stack_files == [str(f) for f in loaded.files]:
        inputs = {"files": dict(loaded.inputs.files), "variables": dict(loaded.inputs.variables)}
        remember(global_args, project=loaded.project.name, stack_files=stack_files, env_files=env_files,
                 inputs=inputs)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float | str:
    """Seconds, or the failure (exit code and the end of stderr) when the command failed."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        return f"FAILED ({proc.returncode}): {' '.join(argv[-3:])}: {proc.stderr.strip()[-600:]}"
    return elapsed


def bench(tool: str, n: int, shape: str, runs: int, env: dict[str, str]) -> dict[str, Any]:
    times: dict[str, list[float]] = {phase: [] for phase, _, _ in PHASES}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-docker") as tmp:
        cwd = Path(tmp) / f"bd{tool.replace('-', '')[:8]}{n}"
        cwd.mkdir()
        (cwd / "compose.yaml").write_text(stack(n, shape))
        try:
            for _ in range(runs):
                for phase, args, extra in PHASES:
                    if extra and tool != "stackup-docker":
                        continue
                    result = timed([*TOOLS[tool], *args], cwd, {**env, **extra})
                    if isinstance(result, str):
                        errors[phase] = result
                    else:
                        times[phase].append(result)
        finally:  # whatever failed, leave nothing behind on the daemon
            subprocess.run(["docker-compose", "down", "-t", "0"], cwd=cwd, env=env, capture_output=True,
                           check=False)
            subprocess.run([*STACKUP, "down", "-t", "0"], cwd=cwd, env=env, capture_output=True, check=False)
    out: dict[str, Any] = {p: round(statistics.median(v), 3) for p, v in times.items() if v}
    out.update({p: e for p, e in errors.items() if p not in out})
    if errors:
        out["errors"] = errors
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STACKUP_"))}
    env["STACKUP_ROOT"] = tempfile.mkdtemp(prefix="stackup-bench-docker-")  # the shortcut's cache
    load_before = os.getloadavg()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    missing = [t for t in ("docker-compose", "docker") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)} (run /work/shared/peers/setup.sh)")
    check = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False)
    if check.returncode != 0:
        raise SystemExit(f"{IMAGE} is not in the Docker daemon (run /work/shared/peers/setup.sh)")
    results: dict[str, dict[str, Any]] = {}
    for n, shape in ((10, "chain"), (50, "tree")):
        name = f"{n} services ({shape})"
        results[name] = {}
        for tool in TOOLS:
            results[name][tool] = row = bench(tool, n, shape, args.runs, env)
            cells = "  ".join(
                f"{p} {row[p]:6.2f}s" if isinstance(row[p], float) else f"{p} FAILED"
                for p, _, _ in PHASES
                if p in row
            )
            print(f"{name:20} {tool:15} {cells}", flush=True)
    ratios = {
        name: {
            phase: round(by["docker-compose"][phase] / by["stackup-docker"][phase], 2)
            for phase, _, _ in PHASES
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
        "stackup_command": " ".join(Path(a).name if a.endswith(".py") else a for a in STACKUP),
        "versions": {"docker": docker_version, "docker-compose": compose_version},
        "target": "stackup at least 2x faster on each phase",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "notes": (
            "noop_up: stackup's no-op shortcut (cli/fastpath.py) with the Docker snapshot "
            "(runtime/docker/snapshot.py); noop_up_full: the whole planner path (load, observe, "
            "reconcile). The ratio for noop_up compares docker-compose with the shortcut."
        ),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "docker.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"docker_compose_over_stackup": ratios}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "step":
        raise SystemExit(step(sys.argv[2:]))
    main()
