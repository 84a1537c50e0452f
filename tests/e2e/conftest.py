"""End-to-end fixtures: the real `stackup` CLI against a real engine on a private STACKUP_ROOT.

One engine root per test module (starting an engine and importing the busybox image costs about
two seconds); every test uses its own project name. The finalizer takes every project down,
stops the engine and checks that nothing stackup made is left: no mounts under the root, no
conmon of this root, no runc containers in its runc root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IMAGE = "stackup-test/busybox:latest"
#: `STACKUP_OCI_RUNTIME=runc pytest tests/e2e` runs the suite on runc. Read at import: the
#: autouse `clean_environ` fixture strips STACKUP_* from the environment before each test.
OCI_RUNTIME = os.environ.get("STACKUP_OCI_RUNTIME", "")


@dataclass
class Stackup:
    """Runs `python -m stackup` with this root; remembers projects so teardown can remove them."""

    root: Path
    projects: set[str] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STACKUP_"))}
        if OCI_RUNTIME:  # the run's choice of runtime reaches every engine the CLI starts
            env["STACKUP_OCI_RUNTIME"] = OCI_RUNTIME
        env["STACKUP_ROOT"] = str(self.root)
        return env

    def run(self, *args: str, cwd: Path | None = None, check: bool = True,
            timeout: float = 180, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "stackup", *args], cwd=cwd, env=self.env(), capture_output=True,
            text=True, timeout=timeout, input=stdin, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"stackup {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}"
                f"\n--- stderr\n{proc.stderr}"
            )
        return proc

    def project(self, tmp_path: Path, compose: str, prefix: str = "e2e") -> Path:
        """Write `compose` into a fresh directory whose project name is unique for this run."""
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        directory = tmp_path / name
        directory.mkdir()
        (directory / "compose.yaml").write_text(compose.replace("$IMAGE", IMAGE))
        self.projects.add(name)
        return directory


def _leftovers(root: Path) -> list[str]:
    found = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
             if str(root) in line.split()[1]]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
    found += [line for line in ps.splitlines() if "conmon" in line and str(root) in line]
    return found


@pytest.fixture(scope="module")
def stackup() -> Iterator[Stackup]:
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests need root (runc, conmon, mounts, netlink)")
    root = Path(tempfile.mkdtemp(prefix="stackup-e2e-"))
    su = Stackup(root=root)
    try:
        su.run("image", "bootstrap", "busybox", IMAGE)
        yield su
    finally:
        for name in sorted(su.projects):
            su.run("-p", name, "down", "-v", "-t", "1", check=False)
        su.run("engine", "stop", check=False)
        left = _leftovers(root)
        if not left:  # never delete through a mount that is still there
            shutil.rmtree(root, ignore_errors=True)
        assert not left, f"the engine left these behind: {left}"
