"""Pull benchmark: stackup vs `skopeo copy ... dir:` vs `docker pull` vs `podman pull`, one local registry.

Issue 12's target: stackup at least as fast as the fastest peer, cold (nothing local) and warm (everything
local), for (a) a Debian-like image of a few hundred MB in several layers and (b) ten small images
sharing a base layer. All tools pull the same images from the same `docker-registry` on loopback, in one
run. Several images are pulled the way Compose does it: all at once (one process per image for the peers,
which take one reference per command; one process for stackup).

By default "stackup" is the library (`stackup.registry.pull` into a `DirectorySink`, in its own
process so start-up counts as it does for the peers: comparable to skopeo's `dir:`, which also stores
blobs without unpacking them). The real thing, the engine's pull (blobs into the store, layers unpacked
and DiffIDs checked, as Docker and Podman do) through the CLI, is measured with a command template:

    STACKUP_ROOT=/tmp/bench-root stackup engine start
    python3 bench/bench_pull.py --tools stackup,skopeo,docker,podman \
        --stackup-cmd 'STACKUP_ROOT=/tmp/bench-root python3 -m stackup image pull -q {refs}' \
        --stackup-reset 'STACKUP_ROOT=/tmp/bench-root python3 -m stackup image rm -f {refs}'

A command that fails is reported as FAILED with its error, never with a time.

Run: `python3 bench/bench_pull.py [--big-mb 300] [--runs 3] [--tools stackup,skopeo,docker,podman]`
(peers come from /work/shared/peers/setup.sh). Writes bench/results/pull.json.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stackup.registry.client import RegistryClient
from stackup.registry.config import RegistryConfig
from stackup.registry.media import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST
from stackup.registry.push import push_image
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySource, blob_path

RESULTS = Path(__file__).parent / "results" / "pull.json"
ROOT = Path(__file__).resolve().parent.parent
BIG_SOURCES = ("/usr/lib/x86_64-linux-gnu", "/usr/share", "/usr/lib/python3", "/usr/bin", "/usr/sbin")
TIMEOUT = 900

_RESIDENT_PULL = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from stackup.registry.client import RegistryClient
from stackup.registry.pull import pull
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySink
print("ready", flush=True)
for line in sys.stdin:
    directory, *refs = line.split()
    try:
        sink = DirectorySink(Path(directory))
        with RegistryClient() as client, ThreadPoolExecutor(len(refs)) as pool:
            list(pool.map(lambda ref: pull(client, Reference.parse(ref), sink), refs))
    except Exception as exc:
        print("error", str(exc).replace("\\n", " "), flush=True)
    else:
        print("ok", flush=True)
"""
"""Like the engine will: imports done once, a new client (ping, auth, TLS) for every pull."""

_LIBRARY_PULL = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from stackup.registry.client import RegistryClient
from stackup.registry.pull import pull
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySink
sink = DirectorySink(Path(sys.argv[1]))
with RegistryClient() as client, ThreadPoolExecutor(len(sys.argv) - 2) as pool:
    list(pool.map(lambda ref: pull(client, Reference.parse(ref), sink), sys.argv[2:]))
"""


# -- the registry and its images ---------------------------------------------------------------

@contextlib.contextmanager
def registry(workdir: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = workdir / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n"
                      f"  filesystem:\n    rootdirectory: {workdir / 'storage'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    with open(workdir / "registry.log", "wb") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"docker-registry did not start: {(workdir / 'registry.log').read_text()}")
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


@dataclass
class Store:
    """Blobs of the benchmark images, pushed with stackup's own push (which this also exercises)."""

    root: Path
    manifests: dict[str, bytes] = field(default_factory=dict)

    def add(self, data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = blob_path(self.root, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return {"digest": digest, "size": len(data)}

    def image(self, name: str, layers: list[bytes]) -> None:
        """`layers` are uncompressed tars; gzip them (level 6, as Docker does) into an OCI image."""
        descriptors, diff_ids = [], []
        for plain in layers:
            diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
            descriptors.append({"mediaType": OCI_LAYER_GZIP, **self.add(gzip.compress(plain, 6, mtime=0))})
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, **self.add(config)}, "layers": descriptors}
        self.manifests[name] = json.dumps(manifest).encode()


def tar_of(files: list[Path], base: Path) -> bytes:
    with tempfile.TemporaryFile() as out:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in files:
                with contextlib.suppress(OSError):
                    tar.add(path, arcname=str(path.relative_to(base)), recursive=False)
        out.seek(0)
        return out.read()


def big_layers(total_mb: int, count: int) -> list[bytes]:
    """Real files from this machine (libraries, docs, binaries): compresses like a Debian image."""
    files: list[Path] = []
    budget = total_mb << 20
    for source in BIG_SOURCES:
        for directory, dirs, names in os.walk(source):
            dirs.sort()
            for name in sorted(names):
                path = Path(directory) / name
                with contextlib.suppress(OSError):
                    if path.is_file() and not path.is_symlink():
                        budget -= path.stat().st_size
                        files.append(path)
                if budget <= 0:
                    break
            if budget <= 0:
                break
        if budget <= 0:
            break
    share = -(-len(files) // count)
    return [tar_of(files[i:i + share], Path("/")) for i in range(0, len(files), share)]


def small_layers(index: int) -> list[bytes]:
    base = [p for p in (Path("/bin/busybox"), Path("/usr/bin/python3.11")) if p.exists()]
    own = tempfile.TemporaryDirectory()
    with own as directory:
        data = Path(directory) / f"app-{index}.bin"
        block, chunks = f"small-{index}".encode(), []
        for _ in range(2 << 15):  # 2 MiB of distinct, incompressible bytes
            block = hashlib.sha256(block).digest()
            chunks.append(block)
        data.write_bytes(b"".join(chunks))
        return [tar_of(base, Path("/")), tar_of([data], Path(directory))]


# -- the tools -----------------------------------------------------------------------------------

Command = list[str]


@dataclass
class Tool:
    """How one tool pulls references and how to make it forget them (for a cold pull)."""

    name: str
    pull: Callable[[list[str], Path], list[Command]]
    reset: Callable[[list[str], Path], list[Command]]
    probe: Command

    resident: bool = False

    def available(self) -> str | None:
        try:
            done = subprocess.run(self.probe, capture_output=True, text=True, timeout=60, check=False)
        except FileNotFoundError:
            return f"{self.probe[0]} is not installed"
        return None if done.returncode == 0 else f"{' '.join(self.probe)}: {done.stderr.strip()[:200]}"


def _templated(template: str, refs: list[str]) -> list[Command]:
    """One command per reference (`{ref}`), or one for all of them (`{refs}`: the way Compose and
    `stackup image pull A B ...` pull several images, in one process). `{python}` is this
    interpreter's real path: `python` found on PATH may be a wrapper (pyenv's shim is a bash
    script that costs ~0.25 s per start here), which an installed `stackup` never goes through."""
    if "{refs}" in template:
        return [["sh", "-c", template.format(refs=" ".join(refs), python=sys.executable)]]
    return [["sh", "-c", template.format(ref=ref, python=sys.executable)] for ref in refs]


def _pull_with(template: str, refs: list[str], _workdir: Path) -> list[Command]:
    return _templated(template, refs)


def stackup_names(commands: list[str]) -> list[str]:
    """`stackup` for the first `--stackup-cmd`, `stackup-2`, `stackup-3` ... for the others."""
    return ["stackup" if i == 0 else f"stackup-{i + 1}" for i in range(len(commands))]


def tools(stackup_cmds: list[str], stackup_reset: str | None) -> dict[str, Tool]:
    extra: dict[str, Tool] = {}
    for name, command in zip(stackup_names(stackup_cmds), stackup_cmds, strict=True):
        extra[name] = Tool(name, functools.partial(_pull_with, command),
                           lambda refs, _d: _templated(stackup_reset or "true", refs),
                           [sys.executable, "-c", "0"])
    if extra:
        stackup = extra.pop("stackup")
    else:
        stackup = Tool("stackup", lambda refs, d: [[sys.executable, "-c", _LIBRARY_PULL, str(d / "stackup"),
                                                    *refs]],
                       lambda _refs, d: [["rm", "-rf", str(d / "stackup")]], [sys.executable, "-c", "0"])
    return {
        "stackup": stackup,
        **extra,
        "stackup-resident": Tool("stackup-resident", lambda refs, d: [[str(d / "stackup-resident"), *refs]],
                                 lambda _refs, d: [["rm", "-rf", str(d / "stackup-resident")]],
                                 [sys.executable, "-c", "0"], resident=True),
        "skopeo": Tool("skopeo", lambda refs, d: [
            ["sh", "-c", f"mkdir -p {d / 'skopeo' / str(i)} && exec skopeo copy -q --src-tls-verify=false "
             f"docker://{ref} dir:{d / 'skopeo' / str(i)}"] for i, ref in enumerate(refs)],
            lambda _refs, d: [["rm", "-rf", str(d / "skopeo")]],
            ["skopeo", "--version"]),
        "docker": Tool("docker", lambda refs, _d: [["docker", "pull", "-q", ref] for ref in refs],
                       lambda refs, _d: [["docker", "rmi", "-f", *refs], ["docker", "image", "prune", "-f"]],
                       ["docker", "info"]),
        "podman": Tool("podman", lambda refs, _d: [["podman", "pull", "-q", "--tls-verify=false", ref]
                                                   for ref in refs],
                       lambda refs, _d: [["podman", "rmi", "-f", *refs]], ["podman", "info"]),
    }


def run_all(commands: list[Command], *, check: bool) -> tuple[float, str | None]:
    """Run commands concurrently; (seconds, None) or (elapsed, error) if any failed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
             for c in commands]
    errors = []
    for command, proc in zip(commands, procs, strict=True):
        try:
            _, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            errors.append(f"{' '.join(command[:4])}: timed out after {TIMEOUT} s")
            continue
        if proc.returncode != 0 and check:
            errors.append(f"{' '.join(command[:4])}: exit {proc.returncode}: {err.decode()[-300:].strip()}")
    elapsed = time.perf_counter() - start
    shown = "; ".join(errors[:2]) + (f" (and {len(errors) - 2} more)" if len(errors) > 2 else "")
    return elapsed, (shown or None)


class Resident:
    """One long-lived Python process that pulls on request, as the engine will."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-c", _RESIDENT_PULL], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the resident stackup process did not start")

    def run(self, commands: list[Command], *, check: bool) -> tuple[float, str | None]:
        if commands and commands[0][0] == "rm":
            return run_all(commands, check=check)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        start = time.perf_counter()
        self.proc.stdin.write(" ".join(commands[0]) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        elapsed = time.perf_counter() - start
        return elapsed, None if answer == "ok" else (answer or "the resident process died")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def measure(tool: Tool, refs: list[str], workdir: Path, runs: int) -> dict[str, object]:
    """Cold: reset, then pull (timed). Warm: pull again with everything present (timed)."""
    resident = Resident() if tool.resident else None
    try:
        return _measure(tool, refs, workdir, runs, resident.run if resident else run_all)
    finally:
        if resident:
            resident.close()


def _measure(tool: Tool, refs: list[str], workdir: Path, runs: int,
             run: Callable[..., tuple[float, str | None]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for mode in ("cold", "warm"):
        times: list[float] = []
        for _ in range(runs):
            if mode == "cold":
                run(tool.reset(refs, workdir), check=False)
            seconds, error = run(tool.pull(refs, workdir), check=True)
            if error:
                result[mode] = {"error": error}
                break
            times.append(seconds)
        else:
            result[mode] = {"median_s": statistics.median(times), "min_s": min(times), "runs": times}
    run(tool.reset(refs, workdir), check=False)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mb", type=int, default=300, help="uncompressed size of the big image")
    parser.add_argument("--big-layers", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", default="stackup,stackup-resident,skopeo,docker,podman")
    parser.add_argument("--stackup-cmd", action="append", default=[],
                        help="command template with {ref} (one command per image) or {refs} (one for "
                        "all), e.g. 'stackup image pull -q {refs}'; `{python}`: this interpreter. "
                        "Repeat it to time several: they are named stackup, stackup-2, ... (add those "
                        "names to --tools)")
    parser.add_argument("--stackup-reset", help="command template with {ref} that forgets the image")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    try:
        with registry(workdir) as host:
            store = Store(workdir / "blobs")
            t0 = time.perf_counter()
            store.image("bench/debian", big_layers(args.big_mb, args.big_layers))
            for i in range(10):
                store.image(f"bench/small-{i}", small_layers(i))
            built = time.perf_counter() - t0
            t0 = time.perf_counter()
            with RegistryClient(RegistryConfig(docker_config=workdir / "no-docker-config.json")) as client:
                for name, raw in store.manifests.items():
                    push_image(client, Reference.parse(f"{host}/{name}:1"), raw, DirectorySource(store.root))
            pushed = time.perf_counter() - t0
            sizes = {name: sum(d["size"] for d in json.loads(raw)["layers"])
                     for name, raw in store.manifests.items()}
            sets = {"big": [f"{host}/bench/debian:1"],
                    "ten-small": [f"{host}/bench/small-{i}:1" for i in range(10)]}
            catalogue = tools(args.stackup_cmd, args.stackup_reset)
            report: dict[str, object] = {
                "setup": {"build_s": built, "stackup_push_s": pushed,
                          "big_compressed_bytes": sizes["bench/debian"],
                          "small_compressed_bytes": sizes["bench/small-0"],
                          "stackup_mode": "cli" if args.stackup_cmd else "library into a directory sink",
                          "stackup_cmds": dict(zip(stackup_names(args.stackup_cmd), args.stackup_cmd,
                                                   strict=True))},
            }
            for name in args.tools.split(","):
                tool = catalogue[name]
                missing = tool.available()
                if missing:
                    report[name] = {"unavailable": missing}
                    continue
                report[name] = {label: measure(tool, refs, workdir, args.runs)
                                for label, refs in sets.items()}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    show(report)


def show(report: dict[str, object]) -> None:
    print(json.dumps(report["setup"]))
    for label in ("big", "ten-small"):
        for mode in ("cold", "warm"):
            rows: dict[str, float] = {}
            for name, value in report.items():
                if name == "setup" or not isinstance(value, dict):
                    continue
                if "unavailable" in value:
                    print(f"{label:9} {mode}  {name:16} UNAVAILABLE: {value['unavailable']}")
                    continue
                outcome = value[label][mode]
                if "error" in outcome:
                    print(f"{label:9} {mode}  {name:16} FAILED: {outcome['error']}")
                else:
                    rows[name] = outcome["median_s"]
            peers = {k: v for k, v in rows.items() if not k.startswith("stackup")}
            best = min(peers.values()) if peers else None
            for name, seconds in sorted(rows.items(), key=lambda kv: kv[1]):
                ours = best is not None and name.startswith("stackup")
                ratio = f"  x{seconds / best:.2f} of fastest peer" if best and ours else ""
                print(f"{label:9} {mode}  {name:16} {seconds:8.3f} s{ratio}")


if __name__ == "__main__":
    main()
