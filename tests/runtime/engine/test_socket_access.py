"""Who may use the engine's Unix socket: root alone by default, one group when configured.

Proven with a real engine and a real unprivileged process (`nobody`, whose primary group is
`nogroup`), not only by reading the mode bits: by default `nobody` is refused; with `--group
nogroup` (or `STACKUP_GROUP`) the socket is 0660 root:nogroup and `nobody` gets an answer.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._remote import engine_env, start_engine

NOBODY = pwd.getpwnam("nobody")
SYSTEM_PYTHON = "/usr/bin/python3"
"""Debian's interpreter: `nobody` cannot reach one installed under /root (0700)."""
PING = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "try:\n"
    "    s.connect(sys.argv[1])\n"
    "except PermissionError:\n"
    "    print('refused'); sys.exit(0)\n"
    "s.sendall(b'GET /_ping HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n"
    "print(s.recv(100).split(b'\\r\\n')[0].decode())\n"
)


@pytest.fixture
def root() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the engine needs root")
    base = Path(tempfile.mkdtemp(prefix="stackup-sock-"))
    base.chmod(0o755)  # a group member must be able to reach the socket inside
    try:
        yield base / "root"
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def _as_nobody(socket_path: Path) -> str:
    """What `nobody` gets from the socket: 'refused' or the HTTP status line."""
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", PING, str(socket_path)], user=NOBODY.pw_uid, group=NOBODY.pw_gid,
        extra_groups=[], capture_output=True, text=True, timeout=60, check=True, cwd="/",
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return result.stdout.strip()


def _stop(root: Path) -> None:
    env = {**engine_env(), "STACKUP_ROOT": str(root)}
    argv = [sys.executable, "-m", "stackup", "engine", "stop"]
    subprocess.run(argv, env=env, check=False, capture_output=True, timeout=60)


def test_socket_is_root_only_by_default(root: Path) -> None:
    with start_engine(root):
        try:
            root.chmod(0o755)
            info = (root / "stackupd.sock").stat()
            assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == (0, 0)
            assert _as_nobody(root / "stackupd.sock") == "refused"
        finally:
            _stop(root)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_socket_opens_to_the_configured_group(root: Path, how: str) -> None:
    args = ("--group", "nogroup") if how == "flag" else ()
    with start_engine(root, *args, env={"STACKUP_GROUP": "nogroup"} if how == "env" else None):
        try:
            root.chmod(0o755)
            info = (root / "stackupd.sock").stat()
            assert stat.S_IMODE(info.st_mode) == 0o660
            assert (info.st_uid, info.st_gid) == (0, NOBODY.pw_gid)
            assert _as_nobody(root / "stackupd.sock") == "HTTP/1.1 200 OK"
        finally:
            _stop(root)


def test_unknown_group_fails_the_start(root: Path) -> None:
    server = "stackup.runtime.engine.server"
    argv = [sys.executable, "-m", server, "--root", str(root), "--group", "no-such-grp"]
    result = subprocess.run(argv, env=engine_env(), capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "group 'no-such-grp' does not exist" in result.stderr
    assert not (root / "stackupd.sock").exists()
