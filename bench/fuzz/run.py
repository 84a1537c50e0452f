"""Fuzzing campaign for the stack loader; writes bench/results/fuzz.json.

Targets, each counted in inputs tried and failures found (target 0):
- loader-hypothesis, dotenv-hypothesis, interpolate-hypothesis: the structured strategies of
  `tests/spec/fuzz_strategies.py`, run far longer than the test suite does;
- loader-atheris, dotenv-atheris: coverage-guided (libFuzzer) on raw bytes, seeded with the
  real-world stack files of the shared corpus when present;
- hostile: fixed worst cases (alias bomb, nesting 10k deep, a file over the size limit, a
  file just under it, 100k substitutions in a value), each loaded in a fresh process whose
  time and peak memory are reported.

    python bench/fuzz/run.py [--examples 5000] [--runs 100000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "fuzz.json"
CORPUS = Path("/work/shared/corpus")
HERE = Path(__file__).parent


def hypothesis_target(name: str, examples: int) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from stackup.errors import StackupError
    from stackup.spec.dotenv import parse_dotenv
    from stackup.spec.interpolate import InterpolationError, substitute
    from tests.spec.fuzz_strategies import SUBSTITUTIONS, check_load, dotenv_text, time_bound, yaml_text

    counts = {"inputs": 0, "loaded": 0}
    config = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )

    def loader(compose: str, override: str | None, env: str | None) -> None:
        counts["inputs"] += 1
        files: dict[str, str | bytes] = {"compose.yaml": compose}
        files.update({k: v for k, v in (("compose.override.yaml", override), (".env", env)) if v is not None})
        counts["loaded"] += check_load(files)

    def dotenv(text: str) -> None:
        counts["inputs"] += 1
        with time_bound(10):
            try:
                parse_dotenv(text, filename=".env", lookup={"A": "a"}.get)
                counts["loaded"] += 1
            except StackupError:
                pass

    def interpolate(text: str) -> None:
        counts["inputs"] += 1
        with time_bound(10):
            try:
                substitute(text, {"A": "a", "B": ""}.get)
                counts["loaded"] += 1
            except InterpolationError:
                pass

    tests = {
        "loader-hypothesis": given(
            yaml_text(), st.one_of(st.none(), yaml_text()), st.one_of(st.none(), dotenv_text())
        )(loader),
        "dotenv-hypothesis": given(dotenv_text())(dotenv),
        "interpolate-hypothesis": given(SUBSTITUTIONS)(interpolate),
    }
    started = time.monotonic()
    failure = None
    try:
        config(tests[name])()
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
    return {
        "tool": "hypothesis",
        "inputs": counts["inputs"],
        "accepted": counts["loaded"],
        "failures": int(failure is not None),
        "failure": failure,
        "seconds": round(time.monotonic() - started, 1),
    }


def _seed_corpus(directory: Path) -> int:
    """Real stack files (and dotenv fixtures) as the fuzzer's starting points."""
    count = 0
    for pattern in ("awesome-compose/**/*compose*.y*ml", "dotenv/*"):
        for path in sorted(CORPUS.glob(pattern)):
            if path.is_file() and path.stat().st_size < 64 * 1024:
                shutil.copy(path, directory / f"seed{count}")
                count += 1
    return count


def atheris_target(name: str, runs: int) -> dict[str, Any]:
    script = HERE / ("fuzz_loader.py" if name == "loader-atheris" else "fuzz_dotenv.py")
    with tempfile.TemporaryDirectory(prefix="stackup-corpus-") as tmp:
        corpus = Path(tmp)
        seeds = _seed_corpus(corpus) if name == "loader-atheris" else 0
        argv = [
            sys.executable,
            str(script),
            f"-runs={runs}",
            "-timeout=20",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp}/",
            str(corpus),
        ]
        if name == "loader-atheris":
            argv.insert(3, f"-dict={HERE / 'compose.dict'}")
        started = time.monotonic()
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        seconds = time.monotonic() - started
        done = re.search(r"Done (\d+) runs", proc.stderr)
        cov = re.findall(r"cov: (\d+)", proc.stderr)
        crashes = sorted(p.name for p in corpus.parent.glob(f"{corpus.name}/crash-*"))
        failure = None if proc.returncode == 0 else proc.stderr[-3000:]
        return {
            "tool": "atheris",
            "inputs": int(done.group(1)) if done else None,
            "seed_inputs": seeds,
            "edges_covered": int(cov[-1]) if cov else None,
            "failures": int(proc.returncode != 0),
            "failure": failure,
            "crash_files": crashes,
            "seconds": round(seconds, 1),
        }


_HOSTILE_PROBE = """
import sys, time
from pathlib import Path
from stackup.errors import StackupError
from stackup.spec import LoadOptions, load
started = time.monotonic()
try:
    load(LoadOptions(working_dir=Path(sys.argv[1]), environ={}))
    outcome = "loaded"
except StackupError as err:
    outcome = str(err).splitlines()[0][:200]
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec from the parent
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(repr((outcome, time.monotonic() - started, peak)))
"""


def _hostile_files() -> dict[str, str | bytes]:
    from stackup.spec.yamlparse import MAX_FILE_BYTES

    laughs = ['  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    service = "services:\n  web:\n    image: busybox\n"
    big_services = "".join(
        f"  s{i}:\n    image: busybox\n    environment: {{I: '{i}'}}\n    labels: [a=1]\n"
        for i in range(150_000)
    )
    big = "services:\n" + big_services
    while len(big) > MAX_FILE_BYTES:
        big = big[: big.rfind("\n  s", 0, MAX_FILE_BYTES)] + "\n"
    return {
        "billion-laughs": "x-bomb:\n" + "\n".join(laughs) + "\n" + service + "    command: *a9\n",
        "nested-lists-10k": service + "x-deep: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "nested-maps-10k": service + "x-deep: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
        "nested-lists-40k": service + "x-deep: " + "[" * 40_000 + "]" * 40_000 + "\n",
        "nested-maps-500k": service + "x-deep: " + "{a: " * 500_000 + "1" + "}" * 500_000 + "\n",
        "over-size-limit": b"services: {}\n" + b"#" * (MAX_FILE_BYTES + 10),
        "just-under-size-limit": big,
        "substitutions-100k": service + "    command: '" + "${A:-x}" * 100_000 + "'\n",
        "nested-defaults-10k": service + "    command: '" + "${A:-" * 10_000 + "x" + "}" * 10_000 + "'\n",
    }


def hostile() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, content in _hostile_files().items():
        with tempfile.TemporaryDirectory(prefix="stackup-hostile-") as tmp:
            path = Path(tmp) / "compose.yaml"
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            proc = subprocess.run(
                [sys.executable, "-c", _HOSTILE_PROBE, tmp],
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)),
            )
            if proc.returncode != 0:
                out[name] = {"file_bytes": path.stat().st_size, "failure": proc.stderr[-2000:]}
                continue
            outcome, seconds, rss_kb = eval(proc.stdout.strip().splitlines()[-1])
            out[name] = {
                "file_bytes": path.stat().st_size,
                "outcome": outcome,
                "load_seconds": round(seconds, 2),
                "peak_rss_mb": round(rss_kb / 1024),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=5000, help="hypothesis examples per target")
    parser.add_argument("--runs", type=int, default=100_000, help="atheris runs per target")
    parser.add_argument("--quick", action="store_true", help="200 examples, 2000 runs (a smoke run)")
    args = parser.parse_args()
    examples, runs = (200, 2000) if args.quick else (args.examples, args.runs)
    targets: dict[str, Any] = {}
    for name in ("loader-hypothesis", "dotenv-hypothesis", "interpolate-hypothesis"):
        targets[name] = hypothesis_target(name, examples)
        print(name, targets[name], flush=True)
    for name in ("loader-atheris", "dotenv-atheris"):
        targets[name] = atheris_target(name, runs)
        print(name, {k: v for k, v in targets[name].items() if k != "failure"}, flush=True)
    report = {
        "command": "python bench/fuzz/run.py " + " ".join(sys.argv[1:]),
        "targets": targets,
        "hostile": hostile(),
        "total_inputs": sum(t["inputs"] or 0 for t in targets.values()),
        "total_failures": sum(t["failures"] for t in targets.values()),
    }
    print(json.dumps(report["hostile"], indent=1))
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}: {report['total_inputs']} inputs, {report['total_failures']} failures")


if __name__ == "__main__":
    main()
