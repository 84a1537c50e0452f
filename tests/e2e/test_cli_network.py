"""Networking through the CLI on the real engine: names, aliases, replicas, isolation, ports.

Traffic only goes to loopback and to addresses on bridges this test's engine made.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import Stackup

pytestmark = [pytest.mark.engine, pytest.mark.parity]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STACK = """
services:
  web:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "echo hello-from-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
    networks:
      front:
        aliases: [www]
    ports: ["127.0.0.1:$PORT:8080"]
  client:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
    networks: [front]
  random:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "echo random-port > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
    networks: [front]
    ports: ["127.0.0.1::8080"]
  worker:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
    scale: 2
    networks: [front]
  hidden:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
    networks: [back]
  inside:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
    networks: [sealed]
networks:
  front: {}
  back: {}
  sealed:
    internal: true
"""


def _sh(su: Stackup, cwd: Path, service: str, script: str) -> subprocess.CompletedProcess[str]:
    return su.run("exec", "-T", service, "sh", "-c", script, cwd=cwd, check=False)


def test_names_aliases_replicas_isolation_and_ports(stackup: Stackup, tmp_path: Path) -> None:
    port = _free_port()
    cwd = stackup.project(tmp_path, STACK.replace("$PORT", str(port)))
    stackup.run("up", "-d", cwd=cwd)

    # by service name and by alias, over TCP
    for name in ("web", "www"):
        got = _sh(stackup, cwd, "client", f"timeout 5 wget -qO- http://{name}:8080/index.html")
        assert got.stdout.strip() == "hello-from-web", got.stderr

    # a scaled service resolves to every replica
    answer = _sh(stackup, cwd, "client", "nslookup worker").stdout
    lines = [line for line in answer.splitlines() if line.startswith("Address") and "#" not in line]
    addresses = {line.split()[-1] for line in lines}
    assert len(addresses) >= 2, answer

    # other networks: no name, no route
    assert _sh(stackup, cwd, "hidden", "nslookup web").returncode != 0
    lookup = "nslookup web | awk '/^Address/ {a=$NF} END {print a}'"
    web_ip = _sh(stackup, cwd, "client", lookup).stdout.strip()
    assert web_ip
    blocked = _sh(stackup, cwd, "hidden", f"timeout 3 wget -qO- http://{web_ip}:8080/index.html")
    assert blocked.returncode != 0

    # an internal network has no way out: not even to another of our bridges' containers
    assert _sh(stackup, cwd, "inside", f"timeout 3 wget -qO- http://{web_ip}:8080/index.html").returncode != 0

    # the published port answers on the host's loopback
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as resp:
        assert resp.read().decode().strip() == "hello-from-web"

    # a random host port: `stackup port` and `ps` name it, and it answers
    where = stackup.run("port", "random", "8080", cwd=cwd).stdout.strip()
    host, _, chosen = where.rpartition(":")
    assert host == "127.0.0.1" and chosen.isdigit() and int(chosen) > 0
    assert f"{where}->8080/tcp" in stackup.run("ps", cwd=cwd).stdout
    with urllib.request.urlopen(f"http://{where}/index.html", timeout=5) as resp:
        assert resp.read().decode().strip() == "random-port"

    stackup.run("down", "-t", "1", cwd=cwd)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    doctor = stackup.run("doctor", check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr + links


def test_two_projects_cannot_reach_each_other(stackup: Stackup, tmp_path: Path) -> None:
    one = stackup.project(tmp_path, """
services:
  srv:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "echo one > /tmp/i; exec httpd -f -p 8080 -h /tmp"]
""")
    two = stackup.project(tmp_path, """
services:
  probe:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
""")
    stackup.run("up", "-d", cwd=one)
    stackup.run("up", "-d", cwd=two)
    ip = _sh(stackup, one, "srv", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1").stdout.strip()
    assert ip
    assert _sh(stackup, two, "probe", "nslookup srv").returncode != 0
    assert _sh(stackup, two, "probe", f"timeout 3 wget -qO- http://{ip}:8080/i").returncode != 0
    stackup.run("down", "-t", "1", cwd=one)
    stackup.run("down", "-t", "1", cwd=two)


def test_a_port_held_by_another_process_is_reported_before_anything_starts(
    stackup: Stackup, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cwd = stackup.project(tmp_path, f"""
services:
  web:
    image: $IMAGE
    command: ["sleep", "3600"]
    ports: ["127.0.0.1:{port}:80"]
""")
        result = stackup.run("up", "-d", cwd=cwd, check=False)
        assert result.returncode == 1
        assert str(port) in result.stderr and "web" in result.stderr
        ps = stackup.run("ps", "-a", "--format", "json", cwd=cwd).stdout
        assert ps.strip() == "[]", "nothing was left half-made"
    stackup.run("down", "-t", "1", cwd=cwd)
