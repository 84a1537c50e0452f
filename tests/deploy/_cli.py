"""`stackup` as a user runs it, from this checkout, on a given engine root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_env(root: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("STACKUP_", "COMPOSE_"))}
    return full | {"STACKUP_ROOT": str(root), "PYTHONPATH": str(REPO), **(env or {})}


def stackup(root: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "stackup", *args], cwd=cwd, env=cli_env(root, env),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, \
        f"stackup {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc
