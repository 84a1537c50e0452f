"""A host reboot, simulated: what a reboot takes away is gone, the state database and volumes stay.

The engine is SIGKILLed, then every conmon (before its container, so no exit file is written,
as in a power cut), every container process, the rootfs and netns mounts, the root's links and
firewall table and the container cgroups go. The runtime's own state files stay where they are
on disk (under the root, not on a tmpfs), naming pids that no longer exist. The next command
starts the engine, which must record what died, bring back what the restart policies say
(`always`, `unless-stopped` unless stopped by hand, `on-failure`: a killed container failed),
with its network and published port, leave the rest exited, and `ps` must say so. `down -v`
then leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bench import _machine
from stackup.net import netns
from stackup.net.firewall import Firewall
from stackup.runtime.engine import linux
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.runfiles import pid_path
from tests.e2e.conftest import Stackup

pytestmark = pytest.mark.engine

STACK = """
services:
  always:
    image: $IMAGE
    restart: always
    command:
      - sh
      - -c
      - mkdir -p /www && echo served-by-always > /www/index.html && exec httpd -f -p 8080 -h /www
    ports: ["127.0.0.1:{port}:8080"]
    volumes: [data:/data]
  unless:
    image: $IMAGE
    restart: unless-stopped
    command: ["sleep", "3600"]
  parked:
    image: $IMAGE
    restart: unless-stopped
    command: ["sleep", "3600"]
  onfail:
    image: $IMAGE
    restart: on-failure
    command: ["sleep", "3600"]
  plain:
    image: $IMAGE
    command: ["sleep", "3600"]
volumes:
  data: {{}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def power_cut(paths: EnginePaths) -> None:
    """Everything a reboot takes away, in the order a power cut would leave it."""
    _kill(int(pid_path(paths).read_text()))
    for line in _machine.conmons(paths.root):
        _kill(int(line.split()[0]))
    for pidfile in paths.containers.glob("*/pidfile"):
        with contextlib.suppress(ValueError, OSError):
            _kill(int(pidfile.read_text()))
    time.sleep(0.5)  # the kernel tears the pid namespaces down
    for point in reversed(_machine.mounts(paths.root)):
        linux.umount(point)
    for name in _machine.links(paths):
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
    Firewall(paths.root).destroy()
    for path in _machine.cgroups(paths.root):
        with contextlib.suppress(OSError):
            Path(path).rmdir()
    directory = netns.netns_dir(paths.root)
    assert not _machine.mounts(paths.root) and not _machine.conmons(paths.root)
    assert all(not os.path.ismount(p) for p in directory.iterdir()) if directory.exists() else True


def _states(stackup: Stackup, project: Path) -> dict[str, str]:
    rows = json.loads(stackup.run("ps", "-a", "--format", "json", cwd=project).stdout)
    return {row["Service"]: row["State"] for row in rows}


def _get(port: int) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                chunks = []  # HTTP/1.0: the server closes after the body; one recv may stop at the headers
                while chunk := sock.recv(4096):
                    chunks.append(chunk)
                return b"".join(chunks).decode(errors="replace")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_reboot_brings_back_what_the_policies_say(stackup: Stackup, tmp_path: Path) -> None:
    port = _free_port()
    project = stackup.project(tmp_path, STACK.format(port=port), prefix="reboot")
    stackup.run("up", "-d", cwd=project)
    stackup.run("exec", "-T", "always", "sh", "-c", "echo kept > /data/marker", cwd=project)
    stackup.run("stop", "-t", "1", "parked", cwd=project)
    assert "served-by-always" in _get(port)

    power_cut(EnginePaths(stackup.root))

    deadline = time.monotonic() + 30
    wanted = {
        "always": "running",
        "unless": "running",
        "onfail": "running",
        "parked": "exited",
        "plain": "exited",
    }
    while (states := _states(stackup, project)) != wanted:  # the first `ps` starts the engine
        assert time.monotonic() < deadline, f"after the reboot: {states}, wanted {wanted}"
        time.sleep(0.5)
    assert "served-by-always" in _get(port)  # its network and published port are back
    assert stackup.run("exec", "-T", "always", "cat", "/data/marker", cwd=project).stdout.strip() == "kept"
    stackup.run("exec", "-T", "unless", "true", cwd=project)
    stackup.run("up", "-d", cwd=project)  # converges: the exited ones start, nothing duplicated
    assert set(_states(stackup, project).values()) == {"running"}
    stackup.run("down", "-v", "-t", "1", cwd=project)
    stackup.projects.discard(project.name)
    assert _machine.leftovers(EnginePaths(stackup.root)) == []  # no firewall rule either: no network left
