"""Every command the README shows is run by a test: listed here with how it is checked.

A shell line in a ```sh block of README.md must be a key of COMMANDS (a new one fails this test
until it is listed): either an end-to-end test in test_examples.py runs it, or it runs here.
Benchmarks take minutes, so their scripts are checked with `--help` (argparse) or compiled.
Every command in the CLI table must answer `--help`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import test_examples

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

QUICKSTART = "test_quickstart_brings_hello_up_and_down"
WEBAPP = "test_webapp_runs_keeps_data_and_reloads_edits"
CI = "test_ci_exit_code_from_tests_and_the_same_tests_through_the_plugin"
COMPAT = "test_compose_compat_same_config_and_same_answers"

#: README command -> ("e2e", test function that runs it) | ("bench", script) | ("syntax", script)
COMMANDS: dict[str, tuple[str, str]] = {
    "./examples/quickstart.sh": ("e2e", QUICKSTART),
    "bash .ci/run": ("syntax", ".ci/run"),  # the CI entry point: running it is CI itself
    "./examples/webapp/run.sh": ("e2e", WEBAPP),
    "curl http://127.0.0.1:8000/": ("e2e", WEBAPP),
    "cd examples/webapp && stackup watch --no-up": ("e2e", WEBAPP),
    "cd examples/webapp && stackup down -v": ("e2e", WEBAPP),
    "cd examples/ci && stackup up --build --exit-code-from tests": ("e2e", CI),
    "cd examples/ci && stackup down -v": ("e2e", CI),
    "python3 -m pytest examples/ci/tests": ("e2e", CI),
    "cd examples/compose-compat && stackup up -d --wait": ("e2e", COMPAT),
    "stackup image bootstrap busybox stackup/busybox:latest": ("e2e", COMPAT),
    "stackup image save stackup/busybox:latest | docker load": ("e2e", COMPAT),
    "cd examples/compose-compat && stackup up -d --wait && stackup down -v": ("e2e", COMPAT),
    "cd examples/compose-compat && docker-compose up -d --build && docker-compose down -v --rmi local": (
        "e2e",
        COMPAT,
    ),
    "cd examples/compose-compat && stackup --profile debug config --services": ("e2e", COMPAT),
    "cd examples/compose-compat && docker-compose --profile debug config": ("e2e", COMPAT),
    **{
        f"python bench/{name}.py{args}": ("bench", f"bench/{name}.py")
        for name, args in (
            ("bench_up", ""),
            ("bench_load", ""),
            ("bench_planner", ""),
            ("bench_readiness", ""),
            ("bench_readiness", " --runs 5"),
            ("bench_container_start", " 40"),
            ("bench_network", ""),
            ("bench_build", ""),
            ("bench_watch", ""),
            ("bench_testing", ""),
            ("bench_docker", ""),
            ("bench_pull", ""),
            ("bench_floor", ""),
            ("bench_floor", " --runs 3"),
            ("bench_scaling", ""),
            ("chaos", " --trials 200"),
            ("bench_load_reliability", ""),
            ("fuzz/run", " --examples 3000 --runs 50000"),
            ("fuzz/api", " --examples 150 --seed 7"),
            ("bench_remote", ""),
            ("bench_engine_cpu", ""),
        )
    },
}


def readme_commands() -> list[str]:
    """Shell lines of the README's ```sh blocks, trailing comments dropped."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    lines = (re.sub(r"\s+#.*$", "", line).strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def table_commands() -> list[str]:
    """Commands in tables: a last column that is one command in backticks (examples, figures)."""
    return re.findall(r"\| `([^`]+)` \|$", README.read_text(), flags=re.M)


def test_every_readme_command_is_listed() -> None:
    found = set(readme_commands()) | set(table_commands())
    assert found - set(COMMANDS) == set(), "README commands no test checks; list them in COMMANDS"
    assert set(COMMANDS) - found == set(), "COMMANDS lists commands the README no longer shows"


@pytest.mark.parametrize("command", sorted(c for c, (kind, _) in COMMANDS.items() if kind == "e2e"))
def test_end_to_end_commands_have_their_test(command: str) -> None:
    name = COMMANDS[command][1]
    assert callable(getattr(test_examples, name, None)), f"{command}: no test {name} in test_examples.py"


@pytest.mark.parametrize("script", sorted({s for kind, s in COMMANDS.values() if kind == "bench"}))
def test_benchmark_scripts_start(script: str) -> None:
    path = REPO / script
    if "argparse" in path.read_text():
        proc = subprocess.run(
            [sys.executable, str(path), "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0 and "usage" in proc.stdout.lower(), proc.stdout + proc.stderr
    else:
        compile(path.read_text(), str(path), "exec")  # no argparse: --help would run it


def test_ci_entry_point_parses() -> None:
    subprocess.run(["bash", "-n", str(REPO / ".ci" / "run")], check=True)


def cli_table_commands() -> list[list[str]]:
    """`stackup <command> [<subcommand>]` for every command the CLI table's first column names."""
    text = README.read_text()
    table = text[text.index("## The CLI at a glance") : text.index("Exit codes:")]
    out: list[list[str]] = []
    for row in re.findall(r"^\| (.+?) \| ", table, flags=re.M)[2:]:  # after the header rows
        for token in re.findall(r"`([^`]+)`", row):
            words = token.removeprefix("stackup ").split()
            command, rest = words[0], words[1:]
            subs = rest[0].split("\\|") if rest and re.fullmatch(r"[a-z]+(\\\|[a-z:A-Z]+)*", rest[0]) else []
            if command in {"image", "network", "engine"} and subs:
                out += [[command, sub] for sub in subs]
            else:
                out.append([command])
    return out


@pytest.mark.parametrize("argv", cli_table_commands(), ids=" ".join)
def test_cli_table_commands_exist(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stackup", *argv, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, f"stackup {' '.join(argv)} --help: {proc.stdout}{proc.stderr}"
