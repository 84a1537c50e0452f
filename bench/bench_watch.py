"""`stackup watch` latency and cost on the native engine.

Measures, on a private engine (temporary STACKUP_ROOT, the busybox test image):
  - sync: a file written on the host -> its new content readable inside the container (read
    through `/proc/<pid>/root`, the container's own mount namespace, every 0.5 ms), N writes,
    debounce included (median, p95; targets 50 / 100 ms);
  - restart: a write under a `sync+restart` rule -> the restarted busybox httpd answering with
    the new content on its published port;
  - rebuild: a one-file source change -> a rebuilt Debian-based Python service (dependencies
    installed before the COPY of the source; `stackup image bootstrap debian:bookworm` base)
    answering with the new code on its published port (target: under 2 s);
  - a tree of 50,000 files, 90% of them under an ignored `node_modules/`: the watcher's
    start-up time, inotify watches and resident memory added to the process, for the watch set
    the session arms (ignored trees left out) and, for comparison, a recursive watch of the root.
docker compose watch is not compared: the installed docker-compose is v1.29, which has no
`watch` (Compose v2.22+ added it), and `docker compose` (v2) is not installed.
Writes bench/results/watch.json. Run: `python bench/bench_watch.py [N]` (root).
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from stackup.api import Stack
from stackup.dev.report import EventKind, WatchEvent
from stackup.dev.rules import RuleMatcher, project_matchers
from stackup.dev.watch import Notifier
from stackup.dev.watchset import outermost, plan

IMAGE = "stackup-test/busybox:latest"
RESULTS = Path(__file__).parent / "results" / "watch.json"


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 2),
        "min_ms": round(ordered[0] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


class Watching:
    def __init__(self, directory: Path, compose: str) -> None:
        (directory / "compose.yaml").write_text(compose.replace("$IMAGE", IMAGE))
        self.stack = Stack.load(project_name=f"bench{uuid.uuid4().hex[:6]}", working_dir=directory)
        self.events: list[WatchEvent] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.stack.watch, kwargs={
            "on_event": self.events.append, "stop": self.stop}, daemon=True)

    def __enter__(self) -> Watching:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not any(e.kind is EventKind.WATCHING for e in self.events):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"watch did not start: {[str(e) for e in self.events]}")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.stack.down(volumes=True)
        self.stack.close()


def bench_sync(directory: Path, n: int) -> dict[str, object]:
    src = directory / "src"
    src.mkdir()
    (src / "f.txt").write_text("start")
    compose = """
services:
  web:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
    develop:
      watch:
        - {path: ./src, target: /app, action: sync}
"""
    samples: list[float] = []
    with Watching(directory, compose) as session:
        pid = session.stack.container("web").details["pid"]
        inside = Path(f"/proc/{pid}/root/app/f.txt")
        for i in range(n):
            content = f"write {i} {uuid.uuid4().hex}"
            started = time.perf_counter()
            (src / "f.txt").write_text(content)
            deadline = started + 5
            while True:
                try:
                    if inside.read_text() == content:
                        break
                except FileNotFoundError:
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"write {i} never arrived")
                time.sleep(0.0005)
            samples.append(time.perf_counter() - started)
            time.sleep(0.03)  # separate writes, as saves are
        reported = [e.elapsed_s for e in session.events if e.kind is EventKind.SYNCED and e.elapsed_s]
    return {"write_to_readable": summary(samples), "reported_action": summary([float(r) for r in reported])}


def bench_restart(directory: Path, n: int) -> dict[str, object]:
    # the page is copied into place when the server starts: only a restarted server serves it
    www = directory / "src"
    www.mkdir()
    (www / "index.html").write_text("v0")
    compose = """
services:
  web:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "mkdir -p /www && cp /src/index.html /www/ && exec httpd -f -p 8000 -h /www"]
    ports: ["127.0.0.1::8000"]
    develop:
      watch:
        - {path: ./src, target: /src, action: sync+restart, initial_sync: true}
"""
    samples: list[float] = []
    with Watching(directory, compose) as session:
        url = session.stack.url("web", 8000, path="/index.html")
        for i in range(n):
            content = f"v{i + 1}"
            started = time.perf_counter()
            (www / "index.html").write_text(content)
            deadline = started + 20
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1) as response:
                        if response.read().decode() == content:
                            break
                except (OSError, http.client.HTTPException):  # not up yet, or stopped mid-answer
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"restart {i} never answered")
                time.sleep(0.002)
            samples.append(time.perf_counter() - started)
            time.sleep(0.2)
    return {"write_to_http_answer": summary(samples)}


DEBIAN = "debian:bookworm"
PYTHON_DOCKERFILE = f"""FROM {DEBIAN}
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-yaml \\
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY src/ /app/
EXPOSE 8000
CMD ["python3", "/app/server.py"]
"""
SERVER = """import signal, sys, yaml
from http.server import BaseHTTPRequestHandler, HTTPServer
VERSION = "{version}"
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = yaml.safe_dump({{"version": VERSION}}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bench_rebuild(directory: Path, n: int) -> dict[str, object]:
    """A one-file source change -> the rebuilt Debian Python service answering with it, on the
    same published port (build through the cache, the new container tried, then swapped)."""
    app = directory / "app"
    (app / "src").mkdir(parents=True)
    (app / "Dockerfile").write_text(PYTHON_DOCKERFILE)
    (app / "src" / "server.py").write_text(SERVER.format(version="v0"))
    (app / "src" / "util.py").write_text("HELPER = 1\n")
    port = _free_port()
    compose = f"""
services:
  api:
    build: ./app
    image: bench-watch-api-{uuid.uuid4().hex[:6]}:latest
    ports: ["127.0.0.1:{port}:8000"]
    develop:
      watch:
        - {{path: ./app, action: rebuild}}
"""
    (directory / "compose.yaml").write_text(compose)
    with Stack.load(project_name=f"benchpy{uuid.uuid4().hex[:6]}", working_dir=directory) as builder:
        started = time.perf_counter()
        builder.build(["api"])  # the first build installs the dependencies: not measured
        first_build_s = time.perf_counter() - started
    samples: list[float] = []
    with Watching(directory, compose) as session:
        url = f"http://127.0.0.1:{port}/"
        for i in range(n):
            content = f"v{i + 1}"
            count = len(session.events)
            started = time.perf_counter()
            (app / "src" / "server.py").write_text(SERVER.format(version=content))
            deadline = started + 120
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1) as response:
                        if response.read().decode().strip() == f"version: {content}":
                            break
                except (OSError, http.client.HTTPException):  # not up yet, or stopped mid-answer
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"rebuild {i} never answered: {[str(e) for e in session.events]}")
                time.sleep(0.005)
            samples.append(time.perf_counter() - started)
            while not any(e.kind is EventKind.REBUILT for e in session.events[count:]) \
                    and time.perf_counter() < deadline:
                time.sleep(0.01)  # the report comes after the swap; take it with the sample
            time.sleep(0.5)
        events = [str(e) for e in session.events if e.kind is EventKind.REBUILT]
    return {"change_to_http_answer": summary(samples), "first_build_s": round(first_build_s, 1),
            "events": events[-3:]}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _inotify_watches() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify":
                count += Path(f"/proc/self/fdinfo/{fd}").read_text().count("inotify wd:")
        except OSError:
            continue
    return count


def bench_large_tree(directory: Path) -> dict[str, object]:
    """50,000 files: 45,000 in node_modules (ignored), 5,000 in src; one rule on the project."""
    for d in range(4500):
        package = directory / "node_modules" / f"pkg{d // 50}" / f"mod{d}"
        package.mkdir(parents=True)
        for f in range(10):
            (package / f"f{f}.js").write_text("x")
    for d in range(500):
        folder = directory / "src" / f"dir{d}"
        folder.mkdir(parents=True)
        for f in range(10):
            (folder / f"f{f}.py").write_text("x")
    (directory / "compose.yaml").write_text(f"""
services:
  web:
    image: {IMAGE}
    develop:
      watch:
        - {{path: ., target: /app, action: sync, ignore: [node_modules/]}}
""")
    stack = Stack.load(project_name="benchtree", working_dir=directory)
    matchers = project_matchers(stack.project)
    result: dict[str, object] = {
        "files": 50_000, "ignored_files": 45_000, "directories": 4500 + 90 + 500 + 3,
        "watch_set": _arm(lambda: _pruned_notifiers(matchers)),
        "recursive_root": _arm(lambda: [Notifier(outermost({m.root for m in matchers}), True,
                                                  queue.Queue())]),
    }
    stack.close()
    return result


def _pruned_notifiers(matchers: list[RuleMatcher]) -> list[Notifier]:
    """What the session arms: the watch set without the ignored trees (`stackup.dev.watchset`)."""
    watched = plan(outermost({m.root for m in matchers}), matchers)
    out = [Notifier(list(watched.recursive), True, queue.Queue())]
    if watched.flat:
        out.append(Notifier(list(watched.flat), False, queue.Queue()))
    return out


def _arm(start: Callable[[], list[Notifier]]) -> dict[str, object]:
    """Start-up time, inotify watches and resident memory added by arming notifiers."""
    before_rss, before_watches = _rss_kib(), _inotify_watches()
    started = time.perf_counter()
    notifiers = start()
    elapsed = time.perf_counter() - started
    time.sleep(0.5)
    result = {
        "start_s": round(elapsed, 3),
        "inotify_watches": _inotify_watches() - before_watches,
        "rss_added_mib": round((_rss_kib() - before_rss) / 1024, 1),
    }
    for notifier in notifiers:
        notifier.close()
    return result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    if os.geteuid() != 0:
        sys.exit("bench_watch needs root (the native engine)")
    root = Path(tempfile.mkdtemp(prefix="stackup-bench-watch-"))
    os.environ["STACKUP_ROOT"] = str(root)
    env = {**os.environ}
    bootstrap = [sys.executable, "-m", "stackup", "image", "bootstrap", "busybox", IMAGE]
    subprocess.run(bootstrap, env=env, check=True, capture_output=True)
    debian = [sys.executable, "-m", "stackup", "image", "bootstrap", DEBIAN]  # cached per machine
    subprocess.run(debian, env=env, check=True, capture_output=True)
    work = Path(tempfile.mkdtemp(prefix="stackup-bench-watch-work-"))
    try:
        (work / "sync").mkdir()
        (work / "restart").mkdir()
        (work / "tree").mkdir()
        (work / "rebuild").mkdir()
        machine: dict[str, object] = {
            "cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        }
        results = {
            "machine": machine,
            "sync": bench_sync(work / "sync", n),
            "restart": bench_restart(work / "restart", max(5, n // 10)),
            "large_tree": bench_large_tree(work / "tree"),
            "rebuild_python": bench_rebuild(work / "rebuild", max(5, n // 10)),
            "docker_compose_watch": "not measured: the installed docker-compose is v1.29.2, which has no "
                                    "`watch` (added in Compose v2.22); Compose v2 documents a 500 ms quiet "
                                    "period before it syncs at all",
        }
    finally:
        subprocess.run([sys.executable, "-m", "stackup", "engine", "stop"], env=env, check=False,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
