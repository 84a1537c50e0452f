"""The CLI end to end on the real engine: up, ps, logs, exec, stop/start, plan, volumes, down.

Stacks here use `network_mode: none` so they test the container lifecycle alone; networking has
its own end-to-end tests.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Stackup

pytestmark = [pytest.mark.engine, pytest.mark.parity]

CHAIN = """
services:
  db:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; echo db ready; exec sleep 3600"]
    healthcheck:
      test: test -f /tmp/ready
      interval: 10s
      start_period: 30s
      start_interval: 100ms
    volumes: [data:/data]
  migrate:
    image: $IMAGE
    network_mode: none
    command: ["sh", "-c", "echo v2 > /data/schema; echo migration done"]
    volumes: [data:/data]
    depends_on:
      db: {condition: service_healthy}
  web:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sh", "-c", "echo web up; exec sleep 3600"]
    environment:
      GREETING: ${GREETING:-hello}
    mem_limit: 64m
    pids_limit: 40
    cap_drop: [NET_RAW]
    volumes: [data:/data]
    depends_on:
      migrate: {condition: service_completed_successfully}
volumes:
  data: {}
"""


def _ps(su: Stackup, cwd: Path) -> dict[str, dict[str, object]]:
    rows = json.loads(su.run("ps", "-a", "--format", "json", cwd=cwd).stdout)
    return {str(r["Service"]): r for r in rows}


@pytest.mark.docker_only("CHAIN waits for service_healthy; Podman runs health checks from systemd "
                         "timers, which this machine's Podman has not, so db never turns healthy")
def test_up_runs_the_chain_in_order_and_down_removes_it(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, CHAIN)
    stackup.run("--progress", "plain", "up", "-d", cwd=cwd)
    ps = _ps(stackup, cwd)
    assert ps["db"]["State"] == "running" and ps["db"]["Health"] == "healthy"
    assert ps["migrate"]["State"] == "exited" and ps["migrate"]["ExitCode"] == 0
    assert ps["web"]["State"] == "running"
    assert "migration done" in stackup.run("logs", "migrate", cwd=cwd).stdout
    assert "db ready" in stackup.run("logs", "--no-log-prefix", "db", cwd=cwd).stdout

    # exec: output, environment and exit code pass through
    out = stackup.run("exec", "-T", "web", "sh", "-c", "echo $GREETING; cat /data/schema", cwd=cwd)
    assert out.stdout.split() == ["hello", "v2"]
    assert stackup.run("exec", "-T", "web", "sh", "-c", "exit 3", cwd=cwd, check=False).returncode == 3

    # no-op up changes nothing; plan says so with exit 0
    assert stackup.run("plan", cwd=cwd, check=False).returncode == 0

    stackup.run("stop", "web", cwd=cwd)
    assert _ps(stackup, cwd)["web"]["State"] == "exited"
    stackup.run("start", "web", cwd=cwd)
    assert _ps(stackup, cwd)["web"]["State"] == "running"

    stackup.run("down", "-t", "1", cwd=cwd)
    assert json.loads(stackup.run("ps", "-a", "--format", "json", cwd=cwd).stdout) == []


@pytest.mark.docker_only("CHAIN waits for service_healthy; Podman runs health checks from systemd "
                         "timers, which this machine's Podman has not, so db never turns healthy")
def test_limits_and_dropped_capability_are_visible_inside(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, CHAIN)
    stackup.run("up", "-d", cwd=cwd)
    mem = stackup.run("exec", "-T", "web", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", cwd=cwd)
    assert int(mem.stdout) == 64 * 2**20
    pids = stackup.run("exec", "-T", "web", "cat", "/sys/fs/cgroup/pids/pids.max", cwd=cwd)
    assert pids.stdout.strip() == "40"
    status = stackup.run("exec", "-T", "web", "grep", "CapEff", "/proc/self/status", cwd=cwd).stdout
    cap_eff = int(status.split()[1], 16)
    assert not cap_eff & (1 << 13), "CAP_NET_RAW (bit 13) should be dropped"
    assert cap_eff & (1 << 0), "CAP_CHOWN (bit 0) is a default capability"
    stackup.run("down", "-t", "1", cwd=cwd)


@pytest.mark.docker_only("CHAIN waits for service_healthy; Podman runs health checks from systemd "
                         "timers, which this machine's Podman has not, so db never turns healthy")
def test_plan_names_the_changed_field_and_volume_survives_recreate(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, CHAIN)
    stackup.run("up", "-d", cwd=cwd)
    stackup.run("exec", "-T", "db", "sh", "-c", "echo keep-me > /data/precious", cwd=cwd)
    (cwd / ".env").write_text("GREETING=bonjour\n")
    plan = stackup.run("plan", cwd=cwd, check=False)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert 'environment.GREETING: "hello" -> "bonjour"' in plan.stdout
    stackup.run("up", "-d", cwd=cwd)
    assert stackup.run("exec", "-T", "web", "sh", "-c", "echo $GREETING", cwd=cwd).stdout.strip() == "bonjour"
    assert stackup.run("exec", "-T", "web", "cat", "/data/precious", cwd=cwd).stdout.strip() == "keep-me"
    # down keeps named volumes; down -v removes them
    stackup.run("down", "-t", "1", cwd=cwd)
    stackup.run("up", "-d", cwd=cwd)
    assert stackup.run("exec", "-T", "web", "cat", "/data/precious", cwd=cwd).stdout.strip() == "keep-me"
    stackup.run("down", "-v", "-t", "1", cwd=cwd)
    stackup.run("up", "-d", cwd=cwd)
    gone = stackup.run("exec", "-T", "web", "cat", "/data/precious", cwd=cwd, check=False)
    assert gone.returncode != 0
    stackup.run("down", "-v", "-t", "1", cwd=cwd)


def test_exit_code_from_returns_the_test_runners_code(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  app:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sleep", "3600"]
  tests:
    image: $IMAGE
    network_mode: none
    command: ["sh", "-c", "echo running tests; sleep 1; echo 2 failed; exit 3"]
    depends_on: [app]
""")
    result = stackup.run("up", "--exit-code-from", "tests", cwd=cwd, check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "2 failed" in result.stdout
    ps = _ps(stackup, cwd)
    assert ps["app"]["State"] == "exited", "the rest of the stack is stopped"
    stackup.run("down", "-t", "1", cwd=cwd)


@pytest.mark.native_only("kills stackup's engine process; over Docker the daemon keeps the state and "
                         "is shared, so it is not killed")
def test_engine_killed_keeps_containers_and_readopts_exit_codes(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  long:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sleep", "3600"]
  short:
    image: $IMAGE
    network_mode: none
    command: ["sh", "-c", "sleep 2; exit 7"]
""")
    stackup.run("up", "-d", cwd=cwd)
    pid = int((stackup.root / "run" / "stackupd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    time.sleep(3)  # `short` exits while no engine runs
    ps = _ps(stackup, cwd)  # starts a new engine, which re-adopts
    assert ps["long"]["State"] == "running"
    assert ps["short"]["State"] == "exited" and ps["short"]["ExitCode"] == 7
    stackup.run("down", "-t", "1", cwd=cwd)


def test_bad_input_gets_one_clear_line(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  ghost:
    image: does-not-exist/anywhere:1
    network_mode: none
  typo:
    image: $IMAGE
    network_mode: none
    command: ["no-such-command"]
""")
    result = stackup.run("up", "-d", cwd=cwd, check=False)
    assert result.returncode == 1
    assert "does-not-exist/anywhere:1" in result.stderr
    assert "Traceback" not in result.stderr
    assert "typo" in result.stderr and "no-such-command" in result.stderr
    stackup.run("down", "-t", "1", cwd=cwd)

    (cwd / "compose.yaml").write_text("services:\n  web:\n    image: x\n    ports: ['1:2:3:4']\n")
    bad = stackup.run("config", cwd=cwd, check=False)
    assert bad.returncode == 3
    assert "compose.yaml:4:" in bad.stderr and "services.web.ports[0]" in bad.stderr


def test_run_one_off_passes_exit_code_and_is_not_an_orphan(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  db:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sleep", "3600"]
  tool:
    image: $IMAGE
    network_mode: none
    command: ["echo", "default"]
    environment: {WHO: tool}
    depends_on: [db]
""")
    out = stackup.run("run", "--rm", "-e", "EXTRA=1", "tool", "sh", "-c", "echo $WHO $EXTRA; exit 4",
                      cwd=cwd, check=False)
    assert out.returncode == 4, out.stderr
    assert "tool 1" in out.stdout
    ps = _ps(stackup, cwd)
    assert ps["db"]["State"] == "running", "dependencies come up first"
    assert "tool" not in ps, "--rm removed the one-off container"
    plan = stackup.run("plan", cwd=cwd, check=False)
    assert "orphan" not in plan.stdout
    stackup.run("down", "-t", "1", cwd=cwd)
