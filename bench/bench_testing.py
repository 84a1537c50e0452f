"""Set-up time of a test environment: the stackup pytest plugin vs testcontainers, one run each.

The stack, the same for every tool: `db`, a health-checked dependency (ready at once, probed
every second), and `web`, busybox httpd started once `db` is healthy, on an ephemeral host port.
Set-up is what a session fixture costs before the first test runs: from the fixture's start to
the first `200` from `web` through its published port. Tear-down (everything removed) is timed
separately. Both libraries are imported and both engines running before the clock starts (the machine's
load average is recorded: other work on it shows up in every number).

  - stackup: `StackEnvironment.start()`, the code `stack_fixture` runs (`up --wait` on the
    native engine), then one GET.
  - testcontainers (on the Docker Engine): the idiomatic pytest fixture body for two containers,
    a `Network`, `DockerContainer`s with `HealthcheckWaitStrategy` / `HttpWaitStrategy`, started in
    dependency order. Twice: with its default 1 s wait-strategy poll, and with a 0.1 s poll
    (`with_poll_interval`), its best case. Ryuk (testcontainers' reaper) is disabled: its image
    comes from Docker Hub, which this machine cannot reach; the fixture removes what it made.
  - testcontainers' `DockerCompose` runs `docker compose` (v2); only docker-compose v1 is
    installed, so it is tried and its failure reported, never a time.
  - docker-compose v1 through subprocess: `up -d`, then polling the published port every 50 ms
    (v1 has no `--wait`): the Compose-file equivalent on Docker.

Run as root: `python bench/bench_testing.py [--runs 1]`. Writes bench/results/testing.json.
A failed tool reports its error instead of a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # read when testcontainers is imported

IMAGE = "stackup-bench/busybox:latest"
RESULTS = Path(__file__).parent / "results" / "testing.json"
TIMEOUT_S = 120.0
PAGE = b"ok\n"

DB_COMMAND = ["sh", "-c", "echo ready > /tmp/ready; exec sleep 600"]
DB_HEALTH = ["CMD-SHELL", "test -f /tmp/ready"]
WEB_COMMAND = ["sh", "-c", "echo ok > /tmp/index.html; exec httpd -f -p 8000 -h /tmp"]

STACK = f"""services:
  db:
    image: {IMAGE}
    init: true
    command: {json.dumps(DB_COMMAND)}
    healthcheck:
      test: {json.dumps(DB_HEALTH)}
      interval: 1s
      retries: 30
  web:
    image: {IMAGE}
    init: true
    command: {json.dumps(WEB_COMMAND)}
    ports: ["127.0.0.1::8000"]
    depends_on:
      db: {{condition: service_healthy}}
"""

Timed = tuple[float, float]  # set-up seconds, tear-down seconds


def get_ok(url: str, deadline: float) -> None:
    """GET until `PAGE` comes back (a port can be published before httpd listens)."""
    while True:
        try:
            if urllib.request.urlopen(url, timeout=5).read() == PAGE:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {TIMEOUT_S:g} s")
        time.sleep(0.05)


# -- stackup --------------------------------------------------------------------------------------


def stackup_round(workdir: Path) -> Timed:
    from stackup.testing.environment import StackEnvironment, StackSpec, unique_name

    spec = StackSpec(files=(workdir / "compose.yaml",), project_name="benchtesting", wait_timeout=TIMEOUT_S)
    env = StackEnvironment(spec, unique_name(spec.base_name))
    started = time.perf_counter()
    try:
        env.start()
        get_ok(env.url("web", 8000), time.monotonic() + TIMEOUT_S)
        setup = time.perf_counter() - started
    finally:
        removing = time.perf_counter()
        env.remove()
    return setup, time.perf_counter() - removing


# -- testcontainers -------------------------------------------------------------------------------


def testcontainers_round(poll_s: float | None) -> Timed:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import HealthcheckWaitStrategy, HttpWaitStrategy

    db_wait, web_wait = HealthcheckWaitStrategy(), HttpWaitStrategy(8000)
    if poll_s is not None:
        db_wait, web_wait = db_wait.with_poll_interval(poll_s), web_wait.with_poll_interval(poll_s)
    health = {"test": DB_HEALTH, "interval": 1_000_000_000, "retries": 30}
    started = time.perf_counter()
    network = Network().create()
    containers: list[DockerContainer] = []
    try:
        db = (DockerContainer(IMAGE).with_network(network).with_network_aliases("db").with_command(DB_COMMAND)
              .with_kwargs(init=True, healthcheck=health).waiting_for(db_wait))  # fmt: skip
        containers.append(db)
        db.start()
        web = (DockerContainer(IMAGE).with_network(network).with_command(WEB_COMMAND)
               .with_exposed_ports(8000).with_kwargs(init=True).waiting_for(web_wait))  # fmt: skip
        containers.append(web)
        web.start()
        url = f"http://{web.get_container_host_ip()}:{web.get_exposed_port(8000)}/"
        get_ok(url, time.monotonic() + TIMEOUT_S)
        setup = time.perf_counter() - started
    finally:
        removing = time.perf_counter()
        for container in reversed(containers):
            container.stop()
        network.remove()
    return setup, time.perf_counter() - removing


def testcontainers_compose_round(workdir: Path) -> Timed:
    from testcontainers.compose import DockerCompose

    compose = DockerCompose(workdir, compose_file_name="compose.yaml", wait=True)
    started = time.perf_counter()
    try:
        compose.start()
        host, port = compose.get_service_host("web", 8000), compose.get_service_port("web", 8000)
        get_ok(f"http://{host}:{port}/", time.monotonic() + TIMEOUT_S)
        setup = time.perf_counter() - started
    except BaseException:
        with contextlib.suppress(Exception):  # the start's error is the one to report
            compose.stop()
        raise
    removing = time.perf_counter()
    compose.stop()
    return setup, time.perf_counter() - removing


# -- docker-compose v1 ----------------------------------------------------------------------------


def run(argv: list[str], cwd: Path) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def docker_compose_round(workdir: Path) -> Timed:
    name = f"benchtesting{uuid.uuid4().hex[:8]}"
    base = ["docker-compose", "-p", name]
    started = time.perf_counter()
    try:
        run([*base, "up", "-d"], workdir)
        address = run([*base, "port", "web", "8000"], workdir).strip()
        get_ok(f"http://{address}/", time.monotonic() + TIMEOUT_S)
        setup = time.perf_counter() - started
    finally:
        removing = time.perf_counter()
        run([*base, "down", "-v", "-t", "0"], workdir)
    return setup, time.perf_counter() - removing


# -- the run --------------------------------------------------------------------------------------


def measure(round_: Callable[[], Timed], runs: int) -> dict[str, Any]:
    setups: list[float] = []
    teardowns: list[float] = []
    try:
        for _ in range(runs):
            setup, teardown = round_()
            setups.append(round(setup, 3))
            teardowns.append(round(teardown, 3))
    except Exception as exc:  # a failed tool reports why, and no time
        return {"error": f"{type(exc).__name__}: {str(exc)[-1500:]}"}
    return {
        "setup_s": setups, "setup_median_s": round(statistics.median(setups), 3),
        "teardown_s": teardowns, "teardown_median_s": round(statistics.median(teardowns), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    own_root = "STACKUP_ROOT" not in os.environ
    os.environ.setdefault("STACKUP_ROOT", tempfile.mkdtemp(prefix="stackup-bench-"))
    subprocess.run([sys.executable, "-m", "stackup", "image", "bootstrap", "busybox", IMAGE], check=True,
                   capture_output=True)  # fmt: skip  (also starts the engine: not part of a set-up)
    warm_imports()

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-testing-") as tmp:
        workdir = Path(tmp)
        (workdir / "compose.yaml").write_text(STACK)
        tools: dict[str, Callable[[], Timed]] = {
            "stackup plugin (native engine)": lambda: stackup_round(workdir),
            "testcontainers DockerContainer (default 1 s poll)": lambda: testcontainers_round(None),
            "testcontainers DockerContainer (0.1 s poll)": lambda: testcontainers_round(0.1),
            "testcontainers DockerCompose": lambda: testcontainers_compose_round(workdir),
            "docker-compose v1 up -d + port poll": lambda: docker_compose_round(workdir),
        }
        for tool, round_ in tools.items():
            if "docker" in tool.lower() and shutil.which("docker") is None:
                results[tool] = {"error": "docker is not installed"}
            else:
                results[tool] = measure(round_, args.runs)
            print(f"{tool:50} {json.dumps(results[tool])[:300]}")
    summary = {
        "what": "test-environment set-up: fixture start -> first 200 from web (db probed every 1 s)",
        "command": " ".join(["python", "bench/bench_testing.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU, kernel {platform.release()}",
        "runs": args.runs,
        "load_average_before": os.getloadavg(),
        "versions": versions(),
        "results": results,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    subprocess.run([sys.executable, "-m", "stackup", "engine", "stop"], check=False, capture_output=True)
    root = os.environ["STACKUP_ROOT"]
    if own_root and root not in Path("/proc/mounts").read_text():
        shutil.rmtree(root, ignore_errors=True)  # never through a mount still there


def warm_imports() -> None:
    """Every module either side uses, imported before any clock starts: the numbers are the
    environments' set-up, not Python's import time (which pytest pays once per run anyway)."""
    import importlib

    for module in (
        "testcontainers.core.container", "testcontainers.core.network", "testcontainers.core.wait_strategies",
        "testcontainers.compose", "stackup.testing.environment", "stackup.api.stack", "stackup.spec.loader",
        "stackup.planner.reconcile", "stackup.planner.execute", "stackup.runtime.native.runtime",
    ):
        importlib.import_module(module)


def versions() -> dict[str, str]:
    import importlib.metadata

    found = {p: importlib.metadata.version(p) for p in ("testcontainers", "docker")}
    for tool in ("docker", "docker-compose"):
        if shutil.which(tool):
            probe = [tool, "version", "--short"]
            if tool == "docker":
                probe = [tool, "version", "--format", "{{.Server.Version}}"]
            out = subprocess.run(probe, capture_output=True, text=True, check=False, timeout=30)
            found[tool] = out.stdout.strip() or out.stderr.strip()[-200:]
    return found


if __name__ == "__main__":
    main()
