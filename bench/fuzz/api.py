"""The engine's HTTP API under schemathesis, driven by its own OpenAPI document (`/openapi.json`).

A private engine on a temporary STACKUP_ROOT is asked over its Unix socket, exactly as the
client asks it. Every operation of the document gets schemathesis cases, both valid ones and
malformed ones (wrong types, missing fields, bad query values); a path parameter is often swapped
for the name of a real object (a running container, a stopped one, a volume, a network, an exec,
the image), so the handlers behind the 404 are reached too. Then a fixed list of out-of-order
requests (stop before start, exec in a stopped container, remove a volume in use, ...).

A finding is a 5xx, a 4xx whose body is not the engine's `ErrorBody` with a message, or a
request that hangs without even sending its status line (streams send it at once). Afterwards
the engine must still create, list and remove a volume, a network and a running container, and
after everything is removed nothing of the root may be left on the machine (`_machine.leftovers`).

Left out, with the reason: `/shutdown` (stops the engine; asked last, it must answer 204),
`/images/pull`, `/images/{ref}/push`, `/build`, `/images/bootstrap` (they reach registries or a
Debian mirror: traffic off the machine), `POST /doctor` (repairs the host's networking).

    python bench/fuzz/api.py [--examples 200] [--seed 1]   # writes bench/results/api_fuzz.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from stackup.runtime.wire.paths import EnginePaths  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api_fuzz.json"
IMAGE = "stackup-test/busybox:latest"
EXCLUDED = {
    ("POST", "/shutdown"): "stops the engine (asked last instead)",
    ("POST", "/images/pull"): "reaches a registry",
    ("POST", "/images/{ref}/push"): "reaches a registry",
    ("POST", "/build"): "FROM reaches a registry",
    ("POST", "/images/bootstrap"): "debootstrap reaches a Debian mirror",
    ("POST", "/doctor"): "repairs the host's networking",
}
HEADERS_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Finding:
    method: str
    path: str
    status: int
    answer: str
    request: str


@dataclass
class Tally:
    """What was asked and what came back."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class Engine:
    """httpx over the engine's Unix socket; each answer is judged as it arrives."""

    def __init__(self, paths: EnginePaths, tally: Tally) -> None:
        self.paths = paths
        self.tally = tally
        self.http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(paths.socket)), base_url="http://stackupd",
            timeout=httpx.Timeout(HEADERS_TIMEOUT_S, read=HEADERS_TIMEOUT_S),
        )  # fmt: skip

    def close(self) -> None:
        self.http.close()

    def ask(self, method: str, url: str, *, template: str | None = None, **kwargs: Any) -> tuple[int, bytes]:
        """Send one request; read the status and at most the first 64 KiB (streams may never end)."""
        self.tally.requests += 1
        shown = json.dumps({k: v for k, v in kwargs.items() if k != "content"}, default=str)[:400]
        described = f"{method} {url} {shown}"
        try:
            with self.http.stream(method, url, **kwargs) as response:
                body = b""
                if response.headers.get("content-type", "").startswith("application/x-ndjson"):
                    body = b""  # a stream: its status line is the answer judged here
                else:
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > 65536:
                            break
                status = response.status_code
        except httpx.ReadTimeout:
            if method == "POST" and (template or url).endswith(("/wait", "/attach", "/start")):
                return 0, b""  # waits by design (a wait on a running container, an attach)
            self.tally.findings.append(Finding(method, template or url, 0, "no answer in 30 s", described))
            return 0, b""
        self.tally.statuses[status] += 1
        self._judge(method, template or url, status, body, described)
        return status, body

    def _judge(self, method: str, path: str, status: int, body: bytes, described: str) -> None:
        if status >= 500:
            text = body.decode(errors="replace")[:600]
            self.tally.findings.append(Finding(method, path, status, text, described))
        elif status >= 400:
            try:
                message = json.loads(body).get("message", "")
            except (ValueError, AttributeError):
                message = ""
            if not message:
                text = "4xx without a message: " + body.decode(errors="replace")[:300]
                self.tally.findings.append(Finding(method, path, status, text, described))

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        status, body = self.ask(method, url, **kwargs)
        if status >= 300:
            raise RuntimeError(f"{method} {url}: {status} {body[:300]!r}")
        return json.loads(body) if body else None


@contextlib.contextmanager
def private_engine() -> Iterator[EnginePaths]:
    """An engine on a fresh root with the busybox test image; stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="stackup-apifuzz-"))
    env = {**os.environ, "STACKUP_ROOT": str(root)}
    cli = [sys.executable, "-m", "stackup"]
    subprocess.run([*cli, "image", "bootstrap", "busybox", IMAGE], env=env, check=True, capture_output=True)
    try:
        yield EnginePaths.from_env(env)
    finally:
        subprocess.run([*cli, "engine", "stop"], env=env, check=False, capture_output=True)
        mounts = Path("/proc/mounts").read_text().splitlines()
        mounted = [line.split()[1] for line in mounts if str(root) in line]
        if not mounted:
            shutil.rmtree(root, ignore_errors=True)


VOLUME_MOUNT = {"kind": "volume", "source": "oo-vol", "target": "/v"}
BOX = {"name": "fz-box", "image": IMAGE, "command": ["sleep", "3600"], "labels": {"fz": "1"}}


def real_objects(engine: Engine) -> dict[str, list[str]]:
    """Objects for path parameters: a running and a stopped container, a volume, a network, an exec."""
    engine.json("POST", "/volumes", json={"name": "fz-vol", "labels": {"fz": "1"}})
    engine.json("POST", "/networks", json={"name": "fz-net", "labels": {"fz": "1"}})
    engine.json("POST", "/containers", json=BOX)
    engine.ask("POST", "/containers/fz-box/start")
    engine.json("POST", "/containers", json={**BOX, "name": "fz-stopped"})
    made = engine.json("POST", "/containers/fz-box/execs", json={"args": ["true"]})
    exec_id = str(made.get("id", "")) if isinstance(made, dict) else ""
    return {"ref": ["fz-box", "fz-stopped", IMAGE], "name": ["fz-vol", "fz-net", "fz-lock"],
            "id": [exec_id] if exec_id else []}  # fmt: skip


def schema_operations(engine: Engine) -> list[Any]:
    import schemathesis

    document = engine.json("GET", "/openapi.json")
    schema = schemathesis.openapi.from_dict(document)
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in EXCLUDED:
            operations.append(operation)
    return operations


def fuzz(
    engine: Engine, operations: list[Any], objects: dict[str, list[str]], examples: int, seed: int
) -> None:
    """`examples` cases per operation and generation mode (valid, then malformed)."""
    from schemathesis import GenerationMode

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_one(engine, operation, mode, objects, examples, seed)


def _fuzz_one(engine: Engine, operation: Any, mode: Any, objects: dict[str, list[str]], examples: int,
              seed: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    pick = st.fixed_dictionaries({k: st.sampled_from([None, None, *v]) for k, v in objects.items() if v})

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), real=pick)
    def run(case: Any, real: dict[str, str | None]) -> None:
        for name, value in real.items():
            if value is not None and case.path_parameters and name in case.path_parameters:
                case.path_parameters[name] = value
        kwargs = case.as_transport_kwargs(base_url="http://stackupd")
        method, url = kwargs.pop("method"), kwargs.pop("url")
        for unused in ("cookies", "files"):
            kwargs.pop(unused, None)
        if "data" in kwargs and not isinstance(kwargs["data"], dict):
            kwargs["content"] = kwargs.pop("data")
        status, body = engine.ask(method, url, template=operation.path, **kwargs)
        if (method, operation.path, status) == ("POST", "/networks", 201):
            # a bridge and a subnet of the machine's shared pools: give it back at once, or other
            # engines on this machine (other tests) find the pools empty
            engine.ask("DELETE", f"/networks/{json.loads(body)['name']}", params={"force": "true"})

    try:
        run()
    except Exception as exc:  # an operation without malformed cases to make is no finding
        if "unsatisf" not in f"{type(exc).__name__} {exc}".lower():
            raise


def out_of_order(engine: Engine) -> None:
    """Requests in an order no client sends, on real objects; each must get an answer below 500."""
    engine.ask("POST", "/containers", json={**BOX, "name": "oo-box"})
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/containers/oo-box/stop", {}),
        ("POST", "/containers/oo-box/kill", {"params": {"signal": "KILL"}}),
        ("POST", "/containers/oo-box/restart", {"params": {"timeout": "0"}}),
        ("POST", "/containers/oo-box/exec", {"json": {"args": ["true"]}}),
        ("GET", "/containers/oo-box/top", {}),
        ("POST", "/containers/oo-box/resize", {"params": {"h": "10", "w": "10"}}),
        ("GET", "/containers/oo-box/archive", {"params": {"path": "/etc/hostname"}}),
        ("POST", "/containers/oo-box/start", {}),
        ("POST", "/containers/oo-box/start", {}),
        ("POST", "/containers", {"json": {**BOX, "name": "oo-box"}}),  # a name taken
        ("DELETE", "/containers/oo-box", {}),  # running, without force
        ("DELETE", f"/images/{IMAGE}", {}),  # in use
        ("POST", "/volumes", {"json": {"name": "oo-vol"}}),
        ("POST", "/volumes", {"json": {"name": "oo-vol"}}),
        ("POST", "/containers", {"json": {**BOX, "name": "oo-user", "mounts": [VOLUME_MOUNT]}}),
        ("DELETE", "/volumes/oo-vol", {}),  # in use
        ("POST", "/networks", {"json": {"name": "oo-net"}}),
        ("POST", "/networks", {"json": {"name": "oo-net"}}),
        ("POST", "/containers/oo-box/stop", {"params": {"timeout": "0"}}),
        ("POST", "/containers/oo-box/stop", {"params": {"timeout": "0"}}),
        ("POST", "/exec/0123456789/resize", {"params": {"h": "1", "w": "1"}}),
        ("GET", "/exec/0123456789/json", {}),
        ("DELETE", "/containers/oo-box", {"params": {"force": "true"}}),
        ("DELETE", "/containers/oo-box", {"params": {"force": "true"}}),
        ("POST", "/containers/oo-box/start", {}),
        ("DELETE", "/containers/oo-user", {"params": {"force": "true"}}),
        ("DELETE", "/volumes/oo-vol", {}),
        ("DELETE", "/volumes/oo-vol", {}),
        ("DELETE", "/networks/oo-net", {}),
        ("DELETE", "/networks/oo-net", {}),
        ("POST", "/containers", {"content": b"{\"name\": ", "headers": {"content-type": "application/json"}}),
        ("POST", "/containers", {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}),
        ("POST", "/volumes", {"content": b"[]", "headers": {"content-type": "application/json"}}),
        ("GET", "/nowhere", {}),
        ("PATCH", "/containers", {}),
    ]
    for method, url, kwargs in steps:
        engine.ask(method, url, **kwargs)


def still_works(engine: Engine) -> list[str]:
    """The engine still creates, lists, runs and removes; the answers agree with each other."""
    problems: list[str] = []

    def check(label: str, ok: Callable[[], bool]) -> None:
        try:
            if not ok():
                problems.append(label)
        except Exception as exc:  # every failure is a finding of this check
            problems.append(f"{label}: {exc}")

    post = engine.json
    check("volume create", lambda: post("POST", "/volumes", json={"name": "ok-vol"})["name"] == "ok-vol")
    check("network create", lambda: post("POST", "/networks", json={"name": "ok-net"})["name"] == "ok-net")
    check("container create", lambda: bool(post("POST", "/containers", json={**BOX, "name": "ok-box"})))
    check("container start", lambda: engine.ask("POST", "/containers/ok-box/start")[0] < 300)
    check("exec", lambda: post("POST", "/containers/ok-box/exec", json={"args": ["echo", "hi"]}) is not None)
    check("listed", lambda: "ok-box" in [c["name"] for c in engine.json("GET", "/containers")])
    check("volume listed", lambda: "ok-vol" in [v["name"] for v in engine.json("GET", "/volumes")])
    return problems


def remove_everything(engine: Engine) -> None:
    for container in engine.json("GET", "/containers"):
        engine.ask("DELETE", f"/containers/{container['id']}", params={"force": "true"})
    for volume in engine.json("GET", "/volumes"):
        engine.ask("DELETE", f"/volumes/{volume['name']}")
    for network in engine.json("GET", "/networks"):
        if network.get("name") not in ("bridge", "host", "none"):
            engine.ask("DELETE", f"/networks/{network['name']}", params={"force": "true"})


def campaign(examples: int, seed: int) -> dict[str, Any]:
    """One run: fuzz, out-of-order, the consistency check, the leak check. Returns the figures."""
    from bench import _machine

    tally = Tally()
    started = time.monotonic()
    with private_engine() as paths:
        engine = Engine(paths, tally)
        try:
            objects = real_objects(engine)
            operations = schema_operations(engine)
            fuzz(engine, operations, objects, examples, seed)
            out_of_order(engine)
            broken = still_works(engine)
            remove_everything(engine)
            time.sleep(0.5)
            leaked = _machine.leftovers(paths)
            shutdown, _ = engine.ask("POST", "/shutdown")
        except BaseException:
            with contextlib.suppress(Exception):  # containers outlive `engine stop`: remove them
                remove_everything(engine)
            raise
        finally:
            engine.close()
    return {
        "operations": len(operations),
        "excluded": {f"{m} {p}": why for (m, p), why in EXCLUDED.items()},
        "examples_per_operation_and_mode": examples,
        "requests": tally.requests,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "server_errors": tally.server_errors,
        "findings": [f.__dict__ for f in tally.findings],
        "broken_afterwards": broken,
        "leaked": leaked,
        "shutdown_status": shutdown,
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="cases per operation and mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = campaign(args.examples, args.seed)
    result["command"] = f"python bench/fuzz/api.py --examples {args.examples} --seed {args.seed}"
    result["load_average"] = os.getloadavg()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("requests", "server_errors", "broken_afterwards", "leaked")}))
    print(f"{len(result['findings'])} findings; written to {args.out}")
    for finding in result["findings"][:20]:
        print(finding)
    return 0 if not result["findings"] and not result["broken_afterwards"] and not result["leaked"] else 1


if __name__ == "__main__":
    sys.exit(main())
