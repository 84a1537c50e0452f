"""The CLI's own contract: argument parsing, messages and exit codes (no engine needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STACKUP_"))}
    environ |= env or {}
    return subprocess.run([sys.executable, "-m", "stackup", *args], cwd=cwd, capture_output=True,
                          text=True, env=environ, timeout=60, check=False)


def test_unknown_runtime_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x\n")
    done = _run("--runtime", "bogus", "ps", cwd=tmp_path)
    assert done.returncode == 2
    assert 'unknown runtime "bogus": use native or docker' in done.stderr


def test_runtime_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x\n")
    done = _run("ps", cwd=tmp_path, env={"STACKUP_RUNTIME": "nope"})
    assert done.returncode == 2 and 'unknown runtime "nope"' in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("up", "--scale", "web"), "--scale expects SERVICE=NUM"),
        (("up", "-d", "--exit-code-from", "web"), "cannot be combined with --detach"),
        (("up", "--force-recreate", "--no-recreate"), "cannot be combined"),
        (("up", "--bogus"), "No such option"),
    ],
)
def test_flag_mistakes_exit_2_without_a_traceback(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n")
    done = _run(*args, cwd=tmp_path, env={"STACKUP_ROOT": str(tmp_path / "root")})
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "root" / "stackupd.sock").exists(), "a flag mistake started the engine"


def test_an_invalid_stack_file_exits_3_with_located_errors(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n    restart: sometimes\n")
    done = _run("plan", cwd=tmp_path, env={"STACKUP_ROOT": str(tmp_path / "root")})
    assert done.returncode == 3
    assert "compose.yaml:4:" in done.stderr and "services.web.restart" in done.stderr
