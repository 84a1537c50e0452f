"""`stackup cp` both ways on the real engine, as `docker compose cp` behaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Stackup

pytestmark = [pytest.mark.engine, pytest.mark.parity]

STACK = """
services:
  box:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
"""


@pytest.mark.docker_only("Podman's archive upload to a path that does not exist yet makes a directory "
                         "there, not the file (`cp file box:/tmp/renamed.txt`)")
def test_cp_in_and_out_with_docker_naming_rules(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, STACK)
    stackup.run("up", "-d", cwd=cwd)
    local = tmp_path / "payload"
    local.mkdir()
    (local / "a.txt").write_text("alpha\n")
    (tmp_path / "single.txt").write_text("one\n")

    stackup.run("cp", str(local), "box:/tmp", cwd=cwd)  # into an existing directory
    stackup.run("cp", str(tmp_path / "single.txt"), "box:/tmp/renamed.txt", cwd=cwd)  # a new name
    out = stackup.run("exec", "-T", "box", "cat", "/tmp/payload/a.txt", "/tmp/renamed.txt", cwd=cwd).stdout
    assert out == "alpha\none\n"

    back = tmp_path / "back"
    back.mkdir()
    stackup.run("cp", "box:/tmp/payload", str(back), cwd=cwd)  # into an existing local directory
    assert (back / "payload" / "a.txt").read_text() == "alpha\n"
    stackup.run("cp", "box:/tmp/renamed.txt", str(tmp_path / "copy.txt"), cwd=cwd)  # a new local name
    assert (tmp_path / "copy.txt").read_text() == "one\n"

    refused = stackup.run("cp", str(local), str(back), cwd=cwd, check=False)
    assert refused.returncode == 2 and "exactly one of SRC and DEST" in refused.stderr
    stackup.run("down", "-t", "1", cwd=cwd)


def test_exec_with_a_tty_from_a_real_terminal(stackup: Stackup, tmp_path: Path) -> None:
    """`stackup exec` on a terminal gets a TTY through the engine's upgraded stream: keys typed
    reach the process, its exit code becomes stackup's."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    cwd = stackup.project(tmp_path, STACK)
    stackup.run("up", "-d", cwd=cwd)
    main, secondary = pty.openpty()
    script = "tty; read line; echo got-$line; exit 3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stackup", "exec", "box", "sh", "-c", script],
        cwd=cwd, env=stackup.env(), stdin=secondary, stdout=secondary, stderr=secondary,
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 60
    sent = False
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                seen += os.read(main, 4096)
            except OSError:
                break
        if not sent and b"/dev/pts/" in seen:
            os.write(main, b"hello\r")
            sent = True
    code = proc.wait(timeout=30)
    os.close(main)
    assert b"/dev/pts/" in seen and b"got-hello" in seen, seen
    assert code == 3
    stackup.run("down", "-t", "1", cwd=cwd)


def test_ls_lists_every_running_project(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, STACK)
    stackup.run("up", "-d", cwd=cwd)
    listed = stackup.run("ls", "--format", "json", cwd=cwd).stdout
    assert cwd.name in listed
    stackup.run("down", "-t", "1", cwd=cwd)
