"""Loader benchmark: a generated 500-service stack, and `stackup --version` start-up.

Targets (issue 2): load + validate 500 services < 0.5 s; `stackup --version` < 0.15 s.
Prints a table and writes bench/results/load.json. Run: `python bench/bench_load.py`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "load.json"


def generate(n: int) -> str:
    lines = ["name: bench", "services:"]
    for i in range(n):
        lines += [
            f"  s{i}:",
            "    image: stackup-bench/busybox:latest",
            "    command: sleep 600",
            "    init: true",
            "    environment:",
            f"      - INDEX={i}",
            "      - MODE=${MODE:-bench}",
            "    ports:",
            f'      - "{10000 + i}:80"',
            "    healthcheck:",
            "      test: echo ok",
            "      interval: 1m30s",
            "    volumes:",
            f"      - data{i % 10}:/data",
            "      - ./src:/src:ro",
        ]
        if i:
            lines += ["    depends_on:", f"      s{(i - 1) // 3}:", "        condition: service_started"]
    lines.append("volumes:")
    lines += [f"  data{j}: {{}}" for j in range(10)]
    return "\n".join(lines) + "\n"


def time_cli(args: list[str], runs: int = 7) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stackup", *args], check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    from stackup.spec.loader import LoadOptions, load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compose.yaml"
        path.write_text(generate(500))
        (Path(tmp) / "src").mkdir()
        load(LoadOptions(files=[path], environ={}))  # warm imports, as a long-lived process would
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            loaded = load(LoadOptions(files=[path], environ={}))
            runs.append(time.perf_counter() - t0)
        assert len(loaded.project.services) == 500
        cli_config = time_cli(["-f", str(path), "config", "-q"], runs=3)
    version = time_cli(["--version"])
    result = {
        "load_500_services_s": {"median": statistics.median(runs), "min": min(runs), "target": 0.5},
        "cli_config_q_500_services_s": {"median": statistics.median(cli_config), "min": min(cli_config)},
        "cli_version_s": {"median": statistics.median(version), "min": min(version), "target": 0.15},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key, val in result.items():
        target = f"  (target < {val['target']} s)" if "target" in val else ""
        print(f"{key:32} median {val['median'] * 1000:7.1f} ms  min {val['min'] * 1000:7.1f} ms{target}")


if __name__ == "__main__":
    main()
