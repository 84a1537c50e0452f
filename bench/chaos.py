"""Chaos: SIGKILL the CLI, stackupd, a conmon or a container's init at a random point of an
operation, then check that the machine recovers.

Each trial, on one private STACKUP_ROOT:
  1. `up -d` a small stack (two services on a bridge network, a published port, a named volume),
     write a fresh token into the volume;
  2. start the operation under test (`up` from a stopped-down state, `up --force-recreate`,
     `down`, `build` of a service whose context changed (its RUN takes about a second), `image
     pull` of a 6 MB image from a local docker-registry, `watch` while a file of the synced
     directory changes five times a second) and, after a random delay within its usual duration,
     SIGKILL the chosen victim (`watch` never ends by itself: it is stopped with SIGTERM, as a
     user's Ctrl+C, a second after the kill);
  3. the next `stackup up -d` must succeed, with exactly one running container per service and
     the token still in the volume; after a killed `build` or `pull` the same command must then
     succeed (no half-recorded layer, blob or cache entry stands in its way);
  4. `stackup down -v` must leave nothing of the root on the machine (`_machine.leftovers`, and
     no file in the root's tmp directory).

Run: `python bench/chaos.py --trials 200` (writes bench/results/chaos.json). Root only.
The e2e suite runs a short version (tests/e2e/test_chaos.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _machine
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.runfiles import pid_path

RESULTS = Path(__file__).parent / "results" / "chaos.json"
IMAGE = "stackup-test/busybox:latest"
TARGETS = ("cli", "engine", "conmon", "init")
SERVICES = ("db", "web", "built")
BUILT = "chaos-built:latest"
DOCKERFILE = """FROM {image}
COPY stamp /stamp
RUN sleep 1 && head -c 2000000 /dev/urandom > /payload
"""
PULLED = "chaos/pulled:v1"
WATCH_S = 3.0
"""How long `watch` runs before it is stopped when the kill did not end it (its "duration")."""
OP_TIMEOUT_S = 120.0

STACK = """
services:
  db:
    image: {image}
    init: true
    restart: unless-stopped
    command: ["sh", "-c", "echo db up; exec sleep 3600"]
    volumes: [data:/data]
    logging: {{driver: json-file, options: {{max-size: 64k, max-file: "2"}}}}
  web:
    image: {image}
    command: ["sh", "-c", "echo web up; exec sleep 3600"]
    ports: ["127.0.0.1:{port}:8080"]
    depends_on: [db]
    stop_grace_period: 1s
    develop:
      watch:
        - {{action: sync, path: ./src, target: /src}}
  built:
    build: ./ctx
    image: {built}
    command: ["sh", "-c", "exec sleep 3600"]
    stop_grace_period: 1s
volumes:
  data: {{}}
"""


@dataclass(frozen=True)
class Operation:
    """An operation under test: what state it starts from (`prepare`) and its CLI arguments."""

    name: str
    argv: tuple[str, ...]
    prepare: Callable[[Chaos], None] = lambda _chaos: None
    during: Callable[[Chaos, threading.Event], None] | None = None
    """Runs on a thread while the operation does (the file changes `watch` syncs), until set."""
    endless: bool = False
    """Runs until stopped (`watch`): SIGTERM a second after the kill, or after `WATCH_S`."""
    again: bool = False
    """Its own command must succeed again after the recovery (`build`, `pull`)."""


OPERATIONS: dict[str, Operation] = {}


def register(op: Operation) -> None:
    """Hook for operations that land later (build, pull, watch): add them to the draw."""
    OPERATIONS[op.name] = op


register(Operation("up", ("up", "-d"), prepare=lambda chaos: chaos.cli("down", "-t", "1")))
register(Operation("recreate", ("up", "-d", "--force-recreate", "-t", "1")))
register(Operation("down", ("down", "-t", "1")))


def _touch_context(chaos: Chaos) -> None:
    (chaos.workdir / "ctx" / "stamp").write_text(secrets.token_hex(8))


def _forget_pulled(chaos: Chaos) -> None:
    chaos.cli("image", "rm", chaos.pulled, check=False)


def _edit_sources(chaos: Chaos, stop: threading.Event) -> None:
    index = 0
    while not stop.wait(0.2):
        index += 1
        (chaos.workdir / "src" / f"file{index % 5}.txt").write_text(secrets.token_hex(64))


register(Operation("build", ("build", "built"), prepare=_touch_context, again=True))
register(Operation("pull", ("image", "pull", "{pulled}"), prepare=_forget_pulled, again=True))
register(Operation("watch", ("watch", "--no-up"), during=_edit_sources, endless=True))


@dataclass
class Trial:
    index: int
    op: str
    target: str
    delay_s: float
    delivered: bool = False
    victim_rc: int | None = None
    recovered: bool = False
    duplicates: list[str] = field(default_factory=list)
    data_intact: bool = False
    leaks: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    events: list[str] = field(default_factory=list)
    """The engine's last events when a trial failed to converge (for diagnosis)."""

    @property
    def ok(self) -> bool:
        return (
            self.recovered and not self.duplicates and self.data_intact and not self.leaks and not self.error
        )


class Chaos:
    """One root, one project directory, the CLI run as a user runs it."""

    def __init__(self, root: Path, *, seed: int, python: str = sys.executable) -> None:
        self.root = root
        self.paths = EnginePaths(root)
        self.rng = random.Random(seed)
        self.python = python
        self.workdir = root.parent / "project"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.project = f"chaos{secrets.token_hex(3)}"
        port = self.rng.randrange(20000, 40000)
        (self.workdir / "compose.yaml").write_text(STACK.format(image=IMAGE, port=port, built=BUILT))
        (self.workdir / "ctx").mkdir(exist_ok=True)
        (self.workdir / "ctx" / "Dockerfile").write_text(DOCKERFILE.format(image=IMAGE))
        (self.workdir / "ctx" / "stamp").write_text("first")
        (self.workdir / "src").mkdir(exist_ok=True)
        self.durations: dict[str, float] = {}
        self.baseline_rules = 0
        self.registry: Any = None
        self.pulled = ""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STACKUP_"))}
        env |= {"STACKUP_ROOT": str(self.root), "COMPOSE_PROJECT_NAME": self.project}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
        return env

    def argv(self, *args: str) -> list[str]:
        return [self.python, "-m", "stackup", *(a.replace("{pulled}", self.pulled) for a in args)]

    def cli(
        self, *args: str, check: bool = True, timeout: float = OP_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args),
            check=False,
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"stackup {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-800:]}"
            )
        return proc

    # -- setup --------------------------------------------------------------------------------

    def setup(self, *, measure: bool = True) -> None:
        """Image, a warm cycle that measures each operation's usual duration (without `measure`:
        assume 2 s each), the empty table."""
        self.cli("image", "bootstrap", "busybox", IMAGE)
        self.start_registry()
        self.cli("up", "-d")
        for name, op in OPERATIONS.items() if measure else ():
            if op.endless:
                self.durations[name] = WATCH_S
                continue
            op.prepare(self)
            started = time.monotonic()
            self.cli(*op.argv)
            self.durations[name] = time.monotonic() - started
            self.cli("up", "-d")
        usual = {name: WATCH_S if op.endless else 2.0 for name, op in OPERATIONS.items()}
        self.durations = self.durations or usual
        self.cli("down", "-v", "-t", "1")
        self.baseline_rules = _machine.firewall_rules(self.root)
        left = _machine.leftovers(self.paths, baseline_rules=self.baseline_rules)
        if left:
            raise RuntimeError(f"a clean cycle already leaves things behind: {left}")

    def start_registry(self) -> None:
        """A docker-registry on loopback holding a made-up two-layer image (6 MB) to pull."""
        from stackup.registry.media import OCI_MANIFEST
        from tests.registry._images import Layout, payload
        from tests.registry._registry import RegistryServer, skopeo

        directory = self.root.parent / "registry"
        directory.mkdir(exist_ok=True)
        self.registry = RegistryServer(directory).__enter__()
        layout = Layout()
        seed = secrets.token_hex(4)
        layers = [{"a": payload(f"a{seed}", 3_000_000)}, {"b": payload(f"b{seed}", 3_000_000)}]
        digest, raw = layout.image(layers)
        oci = layout.write(directory / "oci", {"v1": (digest, raw, OCI_MANIFEST)})
        self.pulled = f"{self.registry.host}/{PULLED}"
        skopeo("copy", "--dest-tls-verify=false", f"oci:{oci}:v1", f"docker://{self.pulled}")

    # -- victims ------------------------------------------------------------------------------

    def victim_pid(self, target: str, cli: subprocess.Popen[str]) -> int | None:
        match target:
            case "cli":
                return cli.pid if cli.poll() is None else None
            case "engine":
                try:
                    return int(pid_path(self.paths).read_text().strip())
                except (OSError, ValueError):
                    return None
            case "conmon":
                pids = [int(line.split()[0]) for line in _machine.conmons(self.root)]
                return self.rng.choice(pids) if pids else None
            case "init":
                pids = []
                for pidfile in self.paths.containers.glob("*/pidfile"):
                    try:
                        pid = int(pidfile.read_text().strip())
                        os.kill(pid, 0)
                    except (OSError, ValueError):
                        continue
                    pids.append(pid)
                return self.rng.choice(pids) if pids else None
        raise ValueError(target)

    # -- one trial ----------------------------------------------------------------------------

    def trial(self, index: int, op_name: str | None = None, target: str | None = None) -> Trial:
        op = OPERATIONS[op_name or self.rng.choice(sorted(OPERATIONS))]
        target = target or self.rng.choice(TARGETS)
        delay = self.rng.uniform(0.0, max(self.durations.get(op.name, 1.0), 0.2) * 1.1)
        trial = Trial(index, op.name, target, round(delay, 3))
        started = time.monotonic()
        try:
            self.cli("up", "-d")
            token = secrets.token_hex(8)
            self.cli("exec", "-T", "db", "sh", "-c", f"echo {token} > /data/marker && sync")
            op.prepare(self)
            stop_during = threading.Event()
            with subprocess.Popen(
                self.argv(*op.argv), cwd=self.workdir, env=self.env(),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            ) as victim:  # fmt: skip
                helper = threading.Thread(target=op.during, args=(self, stop_during), daemon=True)
                if op.during is not None:
                    helper.start()
                time.sleep(delay)
                pid = self.victim_pid(target, victim)
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        trial.delivered = True
                    except ProcessLookupError:
                        pass
                if trial.delivered and target == "init":
                    self.await_recorded_exit(pid)
                if op.endless:  # watch runs on: a user stops it with Ctrl+C
                    time.sleep(1.0)
                    if victim.poll() is None:
                        victim.send_signal(signal.SIGTERM)
                stop_during.set()
                if helper.is_alive():
                    helper.join()
                try:
                    victim.communicate(timeout=OP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    victim.kill()
                    victim.communicate()
                    trial.error = f"{op.name} hung for {OP_TIMEOUT_S:g}s after the kill"
                trial.victim_rc = victim.returncode
            recovery = self.cli("up", "-d", check=False)
            if recovery.returncode != 0:
                trial.error = trial.error or f"recovery up failed: {recovery.stderr.strip()[-600:]}"
            else:
                trial.recovered = True
                trial.duplicates = self.duplicates()
                if trial.duplicates:
                    trial.events = self.recent_events()
                read = self.cli("exec", "-T", "db", "cat", "/data/marker", check=False)
                trial.data_intact = read.stdout.strip() == token
                if not trial.data_intact:
                    trial.error = (
                        f"volume data: expected {token}, read {read.stdout.strip()!r} {read.stderr.strip()}"
                    )
                if op.again:
                    again = self.cli(*op.argv, check=False)
                    if again.returncode != 0:
                        said = again.stderr.strip()[-600:]
                        trial.error = trial.error or f"{op.name} after the crash: {said}"
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            trial.error = trial.error or str(exc)
        finally:
            down = self.cli("down", "-v", "-t", "1", check=False)
            if down.returncode != 0:
                trial.error = trial.error or f"down -v failed: {down.stderr.strip()[-600:]}"
            trial.leaks = _machine.leftovers(self.paths, baseline_rules=self.baseline_rules)
            trial.leaks += [f"temporary file {p.name}" for p in self.temporaries()]
            trial.seconds = round(time.monotonic() - started, 2)
        return trial

    def await_recorded_exit(self, pid: int | None, timeout_s: float = 15.0) -> None:
        """Wait until the engine has recorded the exit of the container whose init was `pid`.

        The crash is complete only then: a recovery `up` that observes the container a moment
        before the engine notices its death would rightly leave it "running", and the container
        would be found exited afterwards (a race of the harness, not of the engine)."""
        from stackup.errors import StackupError
        from stackup.runtime.native.client import EngineClient

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with EngineClient(self.paths.socket) as client:
                    if not any(r.pid == pid and r.status == "running" for r in client.list_containers()):
                        return
            except StackupError:
                return  # no engine answering: the next `up` starts one, which re-adopts
            time.sleep(0.1)

    def recent_events(self, count: int = 24) -> list[str]:
        """The last events of the root, oldest first, read from the state database."""
        import sqlite3

        query = "SELECT id, time, action, attributes FROM events ORDER BY id DESC LIMIT ?"
        with contextlib.closing(sqlite3.connect(f"file:{self.paths.state_db}?mode=ro", uri=True)) as db:
            rows = db.execute(query, (count,)).fetchall()
        return [f"{t[11:23]} {a} {json.loads(attrs).get('name', '')}" for _i, t, a, attrs in reversed(rows)]

    def temporaries(self) -> list[Path]:
        """What the root's tmp directory still holds (pulls and builds stage there)."""
        directory = self.paths.tmp
        return sorted(directory.iterdir()) if directory.is_dir() else []

    def duplicates(self) -> list[str]:
        """Services without exactly one running container."""
        rows = json.loads(self.cli("ps", "-a", "--format", "json").stdout or "[]")
        problems = []
        for service in SERVICES:
            mine = [r for r in rows if r["Service"] == service]
            if len(mine) != 1 or mine[0]["State"] != "running":
                problems.append(f"{service}: {[(r['Name'], r['State']) for r in mine]}")
        return problems

    def close(self) -> list[str]:
        """Take everything down and stop the engine; what could not be removed."""
        self.cli("down", "-v", "-t", "1", check=False)
        left = _machine.leftovers(self.paths, baseline_rules=self.baseline_rules)
        self.cli("image", "rm", BUILT, check=False)
        self.cli("engine", "stop", check=False)
        if self.registry is not None:
            self.registry.stop()
        if left:
            _machine.scrub(self.paths)
        return left


def run(
    trials: int, *, seed: int, workdir: Path, progress: Callable[[Trial], None] = lambda _t: None,
    ops: tuple[str, ...] = (),
) -> dict[str, object]:
    """`trials` trials, each of an operation drawn from `ops` (default: all) and a victim."""
    chaos = Chaos(workdir / "root", seed=seed)
    drawn = sorted(ops or OPERATIONS)
    results: list[Trial] = []
    try:
        chaos.setup()
        for index in range(trials):
            trial = chaos.trial(index, chaos.rng.choice(drawn))
            results.append(trial)
            progress(trial)
            if trial.leaks:  # start the next trial from a clean machine all the same
                _machine.scrub(chaos.paths)
    finally:
        final_leaks = chaos.close()
    failed = [t for t in results if not t.ok]
    return {
        "trials": len(results),
        "crashes_delivered": sum(t.delivered for t in results),
        "recovered": sum(t.recovered for t in results),
        "resources_leaked": sum(len(t.leaks) for t in results) + len(final_leaks),
        "data_lost": sum(t.recovered and not t.data_intact for t in results),
        "duplicate_or_missing_containers": sum(bool(t.duplicates) for t in results),
        "failed_trials": len(failed),
        "by_operation": {name: sum(t.op == name for t in results) for name in OPERATIONS},
        "by_target": {name: sum(t.target == name and t.delivered for t in results) for name in TARGETS},
        "operation_durations_s": {k: round(v, 3) for k, v in chaos.durations.items()},
        "seed": seed,
        "failures": [asdict(t) for t in failed],
        "mean_trial_s": round(sum(t.seconds for t in results) / max(len(results), 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--ops", default="", help=f"comma-separated subset of {','.join(OPERATIONS)}")
    args = parser.parse_args()
    ops = tuple(o for o in args.ops.split(",") if o)
    unknown = set(ops) - set(OPERATIONS)
    if unknown:
        sys.exit(f"unknown operations: {', '.join(sorted(unknown))} (known: {', '.join(OPERATIONS)})")
    if os.geteuid() != 0:
        sys.exit("chaos needs root (it runs the real engine)")

    def show(trial: Trial) -> None:
        state = "ok" if trial.ok else f"FAIL {trial.error or trial.leaks or trial.duplicates}"
        print(f"#{trial.index:3d} {trial.op:9s} kill {trial.target:6s} at {trial.delay_s:5.2f}s "
              f"delivered={trial.delivered!s:5s} {trial.seconds:5.1f}s {state}", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="stackup-chaos-") as tmp:
        started = time.monotonic()
        summary = run(args.trials, seed=args.seed, workdir=Path(tmp), progress=show, ops=ops)
        summary["wall_s"] = round(time.monotonic() - started, 1)
        summary["load_average"] = os.getloadavg()
        summary["command"] = f"python bench/chaos.py --trials {args.trials} --seed {args.seed}" + (
            f" --ops {args.ops}" if ops else "")
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=2))


if __name__ == "__main__":
    main()
