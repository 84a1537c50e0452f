"""Dockerfile build speed: stackup's engine vs `docker build` and `buildah bud`, same Dockerfile, same base.

The base is one Debian bookworm rootfs (debootstrap minbase from this machine's apt mirror, or
the directory given as the first argument), imported into each builder: `stackup image import`
(a temporary STACKUP_ROOT), `docker import` and `podman import` (buildah reads podman's store).
The Dockerfile has 10 steps (layer and metadata steps, no network) over a context of 200 small
source files. Measured: the cold build (empty cache, once), the no-op rebuild (median of 5) and
the rebuild after one source file changed (median of 3, each after a different change). Docker
uses its classic builder when the installed docker has no buildx (BuildKit) plugin; buildah runs
with `--layers` (its layer cache; without it buildah caches nothing). stackup is measured twice:
through the CLI (`python -m stackup build`, Python start-up included; the interpreter's own
start-up, `python -c pass`, is measured next to it as the floor) and through the API
(`EngineClient.build`, what `stackup watch` and `Stack.build` call in-process). A timed command
that fails is reported as failed, never timed.
Writes bench/results/build.json. Run as root: `python bench/bench_build.py [ROOTFS]`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "build.json"
RUN = uuid.uuid4().hex[:12]
"""Marks every image this run makes (the peers' intermediate images too), so cleanup finds them."""
BASE = "bench-build/debian:bookworm"

DOCKERFILE = f"""\
FROM {BASE}
ENV APP_HOME=/app LANG=C.UTF-8 BENCH_RUN={RUN}
WORKDIR /app
COPY requirements.txt ./
RUN sort requirements.txt > /app/requirements.sorted && wc -l requirements.txt
RUN mkdir -p /app/data /app/logs && useradd --system --home /app app
COPY src/ ./src/
RUN cat src/*.txt | sha256sum > /app/source.digest && ls src | wc -l
LABEL org.example.bench=build
CMD ["cat", "/app/source.digest"]
"""


class Failed(Exception):
    pass


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Failed(
            f"{' '.join(argv[:4])}... exited {proc.returncode}: {(proc.stderr or proc.stdout)[-800:]}"
        )


def timed(action: Callable[[], None]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        action()
    except Failed as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "seconds": round(time.perf_counter() - started, 4)}


def make_context(directory: Path, salt: str) -> None:
    """Contents differ per builder (`salt`): stackup's cache is content-addressed, so two stackup
    runs on identical files would share layers and the second would time cache hits."""
    (directory / "src").mkdir(parents=True)
    for i in range(200):
        (directory / "src" / f"file{i}.txt").write_text(f"source file {i} for {salt}\n" * 20)
    (directory / "requirements.txt").write_text("".join(f"{salt}-package-{i}==1.{i}\n" for i in range(30)))
    (directory / "Dockerfile").write_text(DOCKERFILE)


def debootstrap(target: Path) -> None:
    mirror = "http://deb.debian.org/debian"
    for path in (Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))):
        for line in (path.read_text() if path.is_file() else "").splitlines():
            if line.startswith("URIs:") and len(line.split()) > 1:
                mirror = line.split()[1]
    run(["debootstrap", "--variant=minbase", "bookworm", str(target), mirror])


NOOP_RUNS, CHANGE_RUNS = 5, 3
"""The no-op and one-file rebuilds are timed several times and the median kept: on a loaded
machine one run of a sub-second command measures the scheduler more than the builder."""


def median_of(results: list[dict[str, object]]) -> dict[str, object]:
    failed = [r for r in results if not r.get("ok")]
    if failed:
        return failed[0]
    times = sorted(float(str(r["seconds"])) for r in results)
    return {"ok": True, "seconds": times[len(times) // 2], "runs": times}


def three(build: Callable[[], None], change: Callable[[int], None]) -> dict[str, dict[str, object]]:
    out = {"cold": timed(build)}
    out["noop"] = median_of([timed(build) for _ in range(NOOP_RUNS)])
    changed = []
    for n in range(CHANGE_RUNS):
        change(n)
        changed.append(timed(build))
    out["one_file"] = median_of(changed)
    return out


def main() -> int:
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    root = work / "stackup-root"
    env = {**os.environ, "STACKUP_ROOT": str(root)}
    tag = f"bench-build/app:{uuid.uuid4().hex[:6]}"
    results: dict[str, object] = {"machine": platform.node(), "python": platform.python_version(),
                                  "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        rootfs = Path(sys.argv[1]) if len(sys.argv) > 1 else work / "rootfs"
        if len(sys.argv) <= 1:
            debootstrap(rootfs)
        tarball = work / "rootfs.tar"
        run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
        run([sys.executable, "-m", "stackup", "image", "import", str(rootfs), BASE], env=env)
        run(["docker", "import", str(tarball), BASE])
        run(["podman", "import", str(tarball), BASE])

        peers: dict[str, dict[str, dict[str, object]]] = {}
        for name in ("stackup-cli", "stackup-api", "docker", "buildah"):
            ctx = work / f"ctx-{name}"
            make_context(ctx, name)

            def change(n: int, ctx: Path = ctx) -> None:
                (ctx / "src" / "file7.txt").write_text(f"changed for {ctx.name}, {n}\n")

            if name == "stackup-cli":
                argv = [sys.executable, "-m", "stackup", "-f", str(ctx / "compose.yaml"), "build", "-q"]
                (ctx / "compose.yaml").write_text(f"services:\n  app:\n    build: .\n    image: {tag}-cli\n")
                peers[name] = three(lambda argv=argv, ctx=ctx: run(argv, env=env, cwd=ctx), change)
            elif name == "stackup-api":
                peers[name] = three(lambda ctx=ctx: _api_build(root, ctx, f"{tag}-api"), change)
            elif name == "docker":
                denv = {**os.environ, "DOCKER_BUILDKIT": "0"}
                argv = ["docker", "build", "-q", "-t", f"{tag}-docker", str(ctx)]
                peers[name] = three(lambda argv=argv, denv=denv: run(argv, env=denv), change)
            else:
                argv = ["buildah", "bud", "--layers", "-q", "-t", f"{tag}-buildah", str(ctx)]
                peers[name] = three(lambda argv=argv: run(argv), change)
            print(name, json.dumps(peers[name]))
        floor = [sys.executable, "-c", "pass"]
        results["python_startup"] = median_of([timed(lambda: run(floor)) for _ in range(NOOP_RUNS)])
        print("python -c pass", json.dumps(results["python_startup"]))
        results["builds"] = peers
        results["docker_builder"] = "classic (no buildx plugin installed)"
        results["ratios"] = _ratios(peers)
        results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(results["ratios"], indent=1))
    finally:
        subprocess.run(
            [sys.executable, "-m", "stackup", "engine", "stop"], env=env, capture_output=True, check=False
        )
        for argv in (
            ["docker", "rmi", "-f", f"{tag}-docker", BASE],
            ["buildah", "rmi", "-f", f"{tag}-buildah"],
            ["podman", "rmi", "-f", BASE],
        ):
            subprocess.run(argv, capture_output=True, check=False)
        _remove_marked()
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _remove_marked() -> None:
    """Delete the peers' images (intermediate ones included) whose config carries this run's mark."""
    for tool, fmt in (("docker", "{{.Config.Env}}"), ("buildah", "{{.OCIv1.Config.Env}}")):
        listed = subprocess.run([tool, "images", "-a", "-q"], capture_output=True, text=True, check=False)
        for image in sorted(set(listed.stdout.split())):
            argv = [tool, "inspect", *(["-t", "image"] if tool == "buildah" else []), "-f", fmt, image]
            env = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
            if f"BENCH_RUN={RUN}" in env:
                subprocess.run([tool, "rmi", "-f", image], capture_output=True, check=False)


def _api_build(root: Path, ctx: Path, tag: str) -> None:
    from stackup.runtime.native.launcher import ensure_engine
    from stackup.runtime.wire.build import BuildEventKind, BuildRequest
    from stackup.runtime.wire.paths import EnginePaths

    client = ensure_engine(EnginePaths(root))
    for event in client.build(BuildRequest(context=str(ctx), tags=(tag,))):
        if event.kind is BuildEventKind.ERROR:
            raise Failed(event.text)


def _ratios(peers: dict[str, dict[str, dict[str, object]]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for phase in ("cold", "noop", "one_file"):
        times = {name: float(str(r[phase]["seconds"])) for name, r in peers.items() if r[phase].get("ok")}
        others = {n: t for n, t in times.items() if not n.startswith("stackup")}
        if not others:
            continue
        fastest = min(others, key=lambda n: others[n])
        for mine in ("stackup-cli", "stackup-api"):
            if mine in times:
                out[f"{phase}:{mine}_vs_{fastest}"] = round(others[fastest] / times[mine], 2)
    return out


if __name__ == "__main__":
    sys.exit(main())
