"""Engine CPU per container during one `up -d` (Python time, the target of issue 18), optionally profiled.

A private engine (temporary STACKUP_ROOT) with the busybox bench image; the engine's user+system
CPU (from /proc/<pid>/stat, its own threads only: crun and conmon are other processes) is read
before and after `up -d` of an N-service tree, and divided by N. `--profile FILE` records the
engine with py-spy during the `up` (speedscope or flamegraph by the file's suffix; `--raw` for
collapsed stacks). Then `down`, and the engine is stopped.
Run as root: `python bench/bench_engine_cpu.py [--services 50] [--runs 3] [--profile up.txt]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_up import IMAGE, command, own_subnet, stack

from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.runfiles import pid_path


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """The process's own user+system CPU; with `children`, that of its reaped children (the
    runtime's processes) instead."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and the CLI's own CPU time (its user+system, from its rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--profile-down", type=Path, help="profile of the last `down` (raw)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="stackup-cpu-"))
    env = {**os.environ, "STACKUP_ROOT": str(root)}
    work = Path(tempfile.mkdtemp(prefix="stackup-cpu-project-"))
    (work / "docker-compose.yml").write_text(stack(args.services, "tree") + own_subnet())
    base = command("stackup")
    per: list[float] = []
    try:
        bootstrap = [*base, "image", "bootstrap", "busybox", IMAGE]
        subprocess.run(bootstrap, env=env, check=True, capture_output=True)
        subprocess.run([*base, "engine", "start"], env=env, check=True, capture_output=True)
        pid = int(pid_path(EnginePaths(root)).read_text())
        for i in range(args.runs):
            spy = None
            if args.profile is not None and i == args.runs - 1:
                fmt = "raw" if args.profile.suffix == ".txt" else "speedscope"
                spy_argv = ["py-spy", "record", "-p", str(pid), "-o", str(args.profile), "-f", fmt,
                            "-r", "200", "--nonblocking", "--gil"]  # fmt: skip
                spy = subprocess.Popen(spy_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            before, before_children = cpu_seconds(pid), cpu_seconds(pid, children=True)
            up, up_cli = run([*base, "--progress", "quiet", "up", "-d"], work, env)
            used = cpu_seconds(pid) - before
            up_children = cpu_seconds(pid, children=True) - before_children
            if spy is not None:
                spy.send_signal(2)
                spy.wait()
            spy = None
            if args.profile_down is not None and i == args.runs - 1:
                spy_argv = ["py-spy", "record", "-p", str(pid), "-o", str(args.profile_down), "-f", "raw",
                            "-r", "200", "--nonblocking", "--gil"]  # fmt: skip
                spy = subprocess.Popen(spy_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            before, before_children = cpu_seconds(pid), cpu_seconds(pid, children=True)
            down, down_cli = run([*base, "--progress", "quiet", "down", "-t", "1"], work, env)
            down_used = cpu_seconds(pid) - before
            down_children = cpu_seconds(pid, children=True) - before_children
            if spy is not None:
                spy.send_signal(2)
                spy.wait()
            per.append(used / args.services * 1000)
            print(f"up {up:.2f} s (engine CPU {used:.2f} s = {per[-1]:.1f} ms/container, its children "
                  f"{up_children:.2f} s, CLI {up_cli:.2f} s)  down {down:.2f} s (engine {down_used:.2f} s, "
                  f"children {down_children:.2f} s, CLI {down_cli:.2f} s)")
        print(f"median engine CPU per container: {statistics.median(per):.1f} ms")
    finally:
        subprocess.run([*base, "down", "-t", "1"], cwd=work, env=env, check=False, capture_output=True)
        subprocess.run([*base, "engine", "stop"], env=env, check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        if not any(str(root) in line for line in Path("/proc/mounts").read_text().splitlines()):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
