"""Readiness latency: from a dependency turning healthy to its dependent's start.

The stack: `db` becomes ready 2 s after it starts and is probed every second; `app` depends on it
with `condition: service_healthy`. The latency is `app`'s start minus `db`'s healthy time, read
from each engine's own records, never from this script's clock:
  - stackup: the engine's event log (`stackup events --json --since --until`): the time of db's
    `health_status: healthy` event to app's `start` event; and, as a cross-check, db's first
    passing probe's end (`inspect` health log) to app's `started_at`.
  - docker-compose / podman-compose, when installed (`shutil.which`): `docker|podman inspect` of
    both containers, the end of db's first passing probe in `State.Health.Log` to app's
    `State.StartedAt`. Missing tools are reported as missing; this script never installs or
    starts them (the peers' engines must already run, as `../shared/peers/setup.sh` leaves them).

stackup's executor polls a dependency every 50 ms (`stack_cmd.WAIT_POLL_S`) and has created the
dependent's container while it waited (`planner/execute.py`), so what remains is one poll and one
`runc start`: under the 100 ms target whatever the probe interval. A peer that polls the health
status on a coarser period, or creates the container only then, adds that instead.

Run as root: `python bench/bench_readiness.py [--runs 5] [--tools stackup,docker-compose,podman-compose]`.
Writes bench/results/readiness.json and prints the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

IMAGE = "stackup-bench/busybox:latest"
RESULTS = Path(__file__).parent / "results" / "readiness.json"
PROBE_INTERVAL_S = 1.0
TARGET_MS = 100.0
TIMEOUT_S = 300.0


def stack(prefix: str) -> str:
    """Explicit container names, so every tool's containers can be inspected by name."""
    return f"""services:
  db:
    image: {IMAGE}
    container_name: {prefix}-db
    init: true
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: {PROBE_INTERVAL_S:g}s
      timeout: 5s
      retries: 30
  app:
    image: {IMAGE}
    container_name: {prefix}-app
    init: true
    command: ["sleep", "600"]
    depends_on:
      db:
        condition: service_healthy
"""


def parse_time(value: str) -> datetime:
    """RFC 3339 with any number of fractional digits (Docker and Podman write nanoseconds)."""
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    return datetime.fromisoformat(text)


def run(argv: list[str], cwd: Path | None, env: dict[str, str]) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def first_passing_probe_end(log: list[dict[str, Any]], exit_key: str, end_key: str) -> datetime:
    ends = [parse_time(str(p[end_key])) for p in log if p.get(exit_key) == 0]
    if not ends:
        raise RuntimeError("no passing probe in the health log (it may have been rotated out)")
    return min(ends)


# -- stackup ------------------------------------------------------------------------------------


def stackup_round(cwd: Path, env: dict[str, str]) -> dict[str, float]:
    base = [sys.executable, "-m", "stackup"]
    run([*base, "up", "-d"], cwd, env)
    try:
        events = [json.loads(line) for line in
                  run([*base, "events", "--json", "--since", "10m", "--until", "0s"], cwd, env).splitlines()
                  if line.strip()]  # fmt: skip
        db = json.loads(run([*base, "inspect", "db"], cwd, env))[0]
        app = json.loads(run([*base, "inspect", "app"], cwd, env))[0]
    finally:
        run([*base, "down", "-t", "0"], cwd, env)
    healthy = min(parse_time(e["time"]) for e in events
                  if e["actor"] == db["id"] and e["action"] == "health_status: healthy")  # fmt: skip
    started = min(parse_time(e["time"]) for e in events if e["actor"] == app["id"] and e["action"] == "start")
    probe_end = first_passing_probe_end(db["health"]["log"], "exit_code", "end")
    return {
        "events_ms": (started - healthy).total_seconds() * 1000,
        "inspect_ms": (parse_time(app["started_at"]) - probe_end).total_seconds() * 1000,
    }


# -- docker-compose / podman-compose ------------------------------------------------------------


def peer_round(tool: str, engine: str, cwd: Path, prefix: str, env: dict[str, str]) -> dict[str, float]:
    """A peer may return from `up -d` before db is healthy (podman-compose does not honour every
    condition: containers/podman-compose#1422), so inspect until db has passed a probe; a negative
    latency then means the dependent started before its dependency was healthy."""
    run([tool, "up", "-d"], cwd, env)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            db, app = json.loads(run([engine, "inspect", f"{prefix}-db", f"{prefix}-app"], None, env))
            state = db["State"]
            log = (state.get("Health") or state.get("Healthcheck") or {}).get("Log") or []
            if any(p.get("ExitCode") == 0 for p in log) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        run([tool, "down", "-t", "0"], cwd, env)
    probe_end = first_passing_probe_end(log, "ExitCode", "End")
    return {"inspect_ms": (parse_time(app["State"]["StartedAt"]) - probe_end).total_seconds() * 1000}


PEERS = {"docker-compose": "docker", "podman-compose": "podman"}


def measure(tool: str, runs: int, env: dict[str, str]) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-readiness-") as tmp:
        for _ in range(runs):
            prefix = f"rd{uuid.uuid4().hex[:8]}"
            cwd = Path(tmp) / prefix
            cwd.mkdir()
            (cwd / "docker-compose.yml").write_text(stack(prefix))
            if tool == "stackup":
                result = stackup_round(cwd, env)
            else:
                result = peer_round(tool, PEERS[tool], cwd, prefix, env)
            for key, value in result.items():
                samples.setdefault(key, []).append(round(value, 1))
    return {
        key: {"samples_ms": values, "median_ms": round(statistics.median(values), 1), "max_ms": max(values)}
        for key, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tools", default="stackup,docker-compose,podman-compose")
    args = parser.parse_args()
    env = dict(os.environ)
    own_root = "STACKUP_ROOT" not in env
    env.setdefault("STACKUP_ROOT", tempfile.mkdtemp(prefix="stackup-bench-"))
    results: dict[str, Any] = {}
    missing: list[str] = []
    for tool in args.tools.split(","):
        if tool == "stackup":
            run([sys.executable, "-m", "stackup", "image", "bootstrap", "busybox", IMAGE], None, env)
        elif shutil.which(tool) is None or shutil.which(PEERS[tool]) is None:
            missing.append(tool)
            continue
        try:
            results[tool] = measure(tool, args.runs, env)
        except (RuntimeError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
            results[tool] = {"error": str(exc)[-2000:]}
        print(f"{tool:15} {json.dumps(results[tool])}")
    headline = results.get("stackup", {}).get("events_ms", {})
    summary = {
        "what": "dependency healthy -> dependent started (condition: service_healthy), engine timestamps",
        "command": " ".join(["python", "bench/bench_readiness.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU, kernel {platform.release()}",
        "probe_interval_s": PROBE_INTERVAL_S,
        "runs": args.runs,
        "tools_requested": args.tools.split(","),
        "results": results,
        "missing_tools": missing,
        "target_ms": TARGET_MS,
        "stackup_meets_target": bool(headline) and headline["max_ms"] < TARGET_MS,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("missing_tools", "target_ms", "stackup_meets_target")}))
    subprocess.run([sys.executable, "-m", "stackup", "engine", "stop"], env=env, check=False,
                   capture_output=True)  # fmt: skip
    if own_root and env["STACKUP_ROOT"] not in Path("/proc/mounts").read_text():
        shutil.rmtree(env["STACKUP_ROOT"], ignore_errors=True)  # never through a mount still there


if __name__ == "__main__":
    main()
