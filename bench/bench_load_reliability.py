"""Load and concurrency figures for the README's reliability table (issue 14).

  parallel_projects   ten projects brought up, then down, at once by ten separate CLIs
                      (two services and a bridge network each); wall time, failures, leftovers
  many_containers     200 containers on one engine (one service at scale 200, no network: the
                      figure is the engine's, not the bridge's); `up` time, engine RSS before and
                      after, `stackup ps` time (median of 5), `down` time
  streaming_clients   50 clients on the Unix socket, 25 following logs and 25 following events,
                      while containers churn (create, start, stop, remove) for `--churn-s`;
                      events and lines received, churn latency, engine RSS, errors

Run: `python bench/bench_load_reliability.py` (root; writes bench/results/reliability.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _machine
from stackup.runtime.labels import PROJECT
from stackup.runtime.native.client import EngineClient
from stackup.runtime.wire.models import ContainerCreate
from stackup.runtime.wire.paths import EnginePaths

RESULTS = Path(__file__).parent / "results" / "reliability.json"
IMAGE = "stackup-test/busybox:latest"

SMALL = """
services:
  db:
    image: {image}
    init: true
    command: ["sleep", "3600"]
  web:
    image: {image}
    init: true
    command: ["sleep", "3600"]
    depends_on: [db]
"""

MANY = """
services:
  app:
    image: {image}
    init: true
    network_mode: none
    command: ["sleep", "3600"]
"""

CHATTY = """
services:
  talk:
    image: {image}
    init: true
    network_mode: none
    command: ["sh", "-c", "while true; do echo tick $$(date +%s%N); usleep 100000; done"]
    deploy: {{replicas: 4}}
"""


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        self.paths = EnginePaths(self.root)

    def env(self, project: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STACKUP_"))}
        env |= {"STACKUP_ROOT": str(self.root), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        if project:
            env["COMPOSE_PROJECT_NAME"] = project
        return env

    def cli(self, *args: str, cwd: Path | None = None, project: str | None = None) -> float:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "stackup", *args], cwd=cwd or self.workdir, env=self.env(project),
            capture_output=True, text=True, check=False, timeout=900,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"stackup {' '.join(args)} ({project}): {proc.stderr.strip()[-800:]}")
        return time.perf_counter() - started

    def project_dir(self, name: str, text: str) -> Path:
        directory = self.workdir / name
        directory.mkdir(exist_ok=True)
        (directory / "compose.yaml").write_text(text.format(image=IMAGE))
        return directory

    def rss(self) -> int:
        with EngineClient(self.paths.socket) as client:
            return client.info().rss_bytes

    # -- the three figures --------------------------------------------------------------------

    def parallel_projects(self, count: int = 10) -> dict[str, Any]:
        names = [f"par{i}" for i in range(count)]
        dirs = {n: self.project_dir(n, SMALL) for n in names}

        def each(action: list[str]) -> tuple[float, list[str]]:
            errors: list[str] = []

            def one(name: str) -> None:
                try:
                    self.cli(*action, cwd=dirs[name], project=name)
                except RuntimeError as exc:
                    errors.append(str(exc))

            started = time.perf_counter()
            with ThreadPoolExecutor(count) as pool:
                list(pool.map(one, names))
            return time.perf_counter() - started, errors

        up_s, up_errors = each(["up", "-d"])
        with EngineClient(self.paths.socket) as client:
            running = sum(r.status == "running" for r in client.list_containers())
        down_s, down_errors = each(["down", "-v", "-t", "1"])
        return {
            "projects": count, "containers_running_after_up": running, "up_wall_s": round(up_s, 2),
            "down_wall_s": round(down_s, 2), "errors": up_errors + down_errors,
            "leftovers": _machine.leftovers(self.paths),
        }  # fmt: skip

    def many_containers(self, count: int = 200) -> dict[str, Any]:
        directory = self.project_dir("many", MANY)
        rss_before = self.rss()
        ps_empty = [self.cli("ps", cwd=directory, project="many") for _ in range(3)]  # CLI start-up alone
        up_s = self.cli("up", "-d", "--scale", f"app={count}", cwd=directory, project="many")
        with EngineClient(self.paths.socket) as client:
            running = sum(r.status == "running" for r in client.list_containers())
        rss_after = self.rss()
        ps = [self.cli("ps", cwd=directory, project="many") for _ in range(5)]
        api = []
        with EngineClient(self.paths.socket) as client:
            for _ in range(5):
                started = time.perf_counter()
                client.list_containers(labels={PROJECT: "many"})
                api.append(time.perf_counter() - started)
        down_s = self.cli("down", "-v", "-t", "1", cwd=directory, project="many")
        return {
            "containers": count, "running": running, "up_s": round(up_s, 1),
            "engine_rss_mib_before": round(rss_before / 2**20, 1),
            "engine_rss_mib_with_200": round(rss_after / 2**20, 1),
            "ps_s_median": round(statistics.median(ps), 3), "ps_s_max": round(max(ps), 3),
            "ps_s_median_empty_project": round(statistics.median(ps_empty), 3),
            "list_api_s_median": round(statistics.median(api), 4),
            "down_s": round(down_s, 1), "leftovers": _machine.leftovers(self.paths),
        }  # fmt: skip

    def streaming_clients(self, clients: int = 50, churn_s: float = 20.0) -> dict[str, Any]:
        directory = self.project_dir("chatty", CHATTY)
        self.cli("up", "-d", cwd=directory, project="chatty")
        with EngineClient(self.paths.socket) as client:
            talkers = [r.id for r in client.list_containers(labels={PROJECT: "chatty"})]
        if not talkers:
            raise RuntimeError("the chatty project has no containers")
        stop = threading.Event()
        received: list[int] = [0] * clients
        errors: list[str] = []

        def follower(index: int) -> None:
            client = EngineClient(self.paths.socket)  # streams have no read timeout
            try:
                stream = (
                    client.logs(talkers[index % len(talkers)], follow=True)
                    if index % 2 == 0
                    else client.events(follow=True)
                )
                for _item in stream:
                    received[index] += 1
                    if stop.is_set():
                        break
            except Exception as exc:
                errors.append(f"client {index}: {type(exc).__name__}: {exc}")
            finally:
                client.close()

        rss_before = self.rss()
        threads = [threading.Thread(target=follower, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        latencies: list[float] = []
        cycles = 0
        deadline = time.monotonic() + churn_s
        with EngineClient(self.paths.socket) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                command = ("sh", "-c", "echo hi; sleep 60")
                request = ContainerCreate(
                    name=f"churn-{cycles}", image=IMAGE, command=command, network_mode="none"
                )
                record = client.create_container(request)
                client.start_container(record.id)
                client.stop_container(record.id, timeout_s=0)
                client.remove_container(record.id, force=True)
                latencies.append(time.perf_counter() - started)
                cycles += 1
            rss_during = client.info().rss_bytes
        stop.set()
        self.cli("down", "-v", "-t", "1", cwd=directory, project="chatty")  # ends the log streams
        for thread in threads:
            thread.join(timeout=30)
        latencies.sort()
        return {
            "clients": clients, "log_followers": (clients + 1) // 2, "event_followers": clients // 2,
            "churn_cycles": cycles, "churn_cycle_s_p50": round(statistics.median(latencies), 3),
            "churn_cycle_s_p95": round(latencies[int(len(latencies) * 0.95) - 1], 3) if latencies else None,
            "items_received_total": sum(received), "items_received_min": min(received),
            "engine_rss_mib_before": round(rss_before / 2**20, 1),
            "engine_rss_mib_during": round(rss_during / 2**20, 1),
            "clients_still_open": sum(t.is_alive() for t in threads),
            "errors": errors[:10], "error_count": len(errors), "leftovers": _machine.leftovers(self.paths),
        }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--churn-s", type=float, default=20.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (it runs the real engine)")
    with tempfile.TemporaryDirectory(prefix="stackup-load-") as tmp:
        bench = Bench(Path(tmp))
        bench.cli("image", "bootstrap", "busybox", IMAGE)
        result: dict[str, Any] = {}
        try:
            for name, run in (
                ("parallel_projects", bench.parallel_projects),
                ("many_containers", lambda: bench.many_containers(args.containers)),
                ("streaming_clients", lambda: bench.streaming_clients(args.clients, args.churn_s)),
            ):
                started = time.perf_counter()
                result[name] = run()
                print(name, json.dumps(result[name]), f"({time.perf_counter() - started:.0f}s)", flush=True)
        finally:
            subprocess.run([sys.executable, "-m", "stackup", "engine", "stop"], env=bench.env(), check=False,
                           capture_output=True)  # fmt: skip
            if _machine.leftovers(bench.paths):
                _machine.scrub(bench.paths)
    result["command"] = "python bench/bench_load_reliability.py"
    result["machine"] = {"cpus": os.cpu_count(), "load_average_1m_at_end": os.getloadavg()[0]}
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
