"""Orchestration through the CLI on the real engine: readiness gates, `up --wait`, lifecycle hooks,
restart policies while no CLI runs, `wait` and `inspect`.

Orderings are read from the engine's own records (probe end times, start and finish times, the
event log), never from the test's clock, so a loaded machine makes the tests slower, not flaky.
The test-runner pattern (`--exit-code-from`) lives in test_cli_lifecycle.py.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stackup.runtime.wire.restart import INITIAL_DELAY_S
from tests.e2e.conftest import Stackup, docker_privileged_exec

pytestmark = [pytest.mark.engine, pytest.mark.parity]

PATIENCE_S = 180.0
"""How long a test waits for the engine to do something on its own (generous: the suite may share
this 2-core machine with another run)."""


def _ps(su: Stackup, cwd: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads(su.run("ps", "-a", "--format", "json", cwd=cwd).stdout)
    return {str(r["Service"]): r for r in rows}


def _inspect(su: Stackup, cwd: Path, service: str) -> dict[str, Any]:
    records: list[dict[str, Any]] = json.loads(su.run("inspect", service, cwd=cwd).stdout)
    assert len(records) == 1
    return records[0]


def _events(su: Stackup, cwd: Path) -> list[dict[str, Any]]:
    """The project's past events, oldest first (`--until` makes `events` a finite report)."""
    out = su.run("events", "--json", "--since", "1h", "--until", "0s", cwd=cwd).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _eventually(what: str, check: Callable[[], bool]) -> None:
    """Poll until `check()` holds; the deadline only stops a broken test from hanging."""
    deadline = time.monotonic() + PATIENCE_S
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def _first_healthy_probe_end(record: dict[str, Any]) -> datetime:
    probes = record["health"]["log"]
    return min(_time(p["end"]) for p in probes if p["exit_code"] == 0)


DB_HEALTHY_AFTER_A_DELAY = """
  db:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sh", "-c", "echo db booting; sleep 1; touch /tmp/ready; echo db ready; exec sleep 3600"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready && echo accepting || (echo not yet; exit 1)"]
      interval: 10s
      start_period: 60s
      start_interval: 100ms
"""


def test_healthy_dependency_and_migration_job_gate_the_app(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, f"""
services:{DB_HEALTHY_AFTER_A_DELAY}
    volumes: [data:/data]
  migrate:
    image: $IMAGE
    network_mode: none
    command: ["sh", "-c", "sleep 1; echo v7 > /data/schema; echo migrated"]
    volumes: [data:/data]
    depends_on:
      db: {{condition: service_healthy}}
  app:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sh", "-c", "cat /data/schema; exec sleep 3600"]
    volumes: [data:/data]
    depends_on:
      db: {{condition: service_healthy}}
      migrate: {{condition: service_completed_successfully}}
volumes:
  data: {{}}
""")
    result = stackup.run("--progress", "plain", "up", "--wait", cwd=cwd, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    ps = _ps(stackup, cwd)
    assert ps["db"]["Health"] == "healthy"
    assert ps["migrate"]["State"] == "exited" and ps["migrate"]["ExitCode"] == 0
    assert ps["app"]["State"] == "running"
    assert "v7" in stackup.run("logs", "--no-log-prefix", "app", cwd=cwd).stdout

    db, migrate, app = (_inspect(stackup, cwd, s) for s in ("db", "migrate", "app"))
    healthy_at = _first_healthy_probe_end(db)
    assert _time(migrate["started_at"]) >= healthy_at, "the job started before its database was healthy"
    assert _time(app["started_at"]) >= _time(migrate["finished_at"]), "the app started before the job ended"

    # the same orderings in the event log
    events = _events(stackup, cwd)
    first = {}
    for e in events:
        key = (e["attributes"].get("io.stackup.service"), e["action"])
        first.setdefault(key, e["id"])
    assert first[("db", "health_status: healthy")] < first[("migrate", "start")]
    assert first[("migrate", "die")] < first[("app", "start")]

    # a no-op `up --wait` is satisfied at once: the finished job is not re-run
    again = stackup.run("up", "--wait", cwd=cwd, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _inspect(stackup, cwd, "migrate")["id"] == migrate["id"]
    stackup.run("down", "-v", "-t", "1", cwd=cwd)


def test_up_wait_names_the_chain_and_shows_probe_output(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  db:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sh", "-c", "echo db booting; exec sleep 3600"]
    healthcheck:
      test: ["CMD-SHELL", "echo 'FATAL: db not accepting connections'; exit 1"]
      interval: 200ms
      retries: 2
  api:
    image: $IMAGE
    network_mode: none
    command: ["sleep", "3600"]
    depends_on:
      db: {condition: service_healthy}
  web:
    image: $IMAGE
    network_mode: none
    command: ["sleep", "3600"]
    depends_on: [api]
""")
    result = stackup.run("up", "--wait", "--wait-timeout", "150", cwd=cwd, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "web <- api <- db" in result.stderr
    assert "FATAL: db not accepting connections" in result.stderr
    assert "health probes of" in result.stdout and "db booting" in result.stdout, "probes and log tail"
    assert "Traceback" not in result.stderr
    ps = _ps(stackup, cwd)  # created while they waited (as Compose does), never started
    assert {ps["api"]["State"], ps["web"]["State"]} == {"created"}, "nothing behind db was started"
    stackup.run("down", "-t", "1", cwd=cwd)


def test_up_wait_has_a_finite_timeout_and_explains_what_was_not_ready(
    stackup: Stackup, tmp_path: Path
) -> None:
    cwd = stackup.project(tmp_path, """
services:
  slow:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sh", "-c", "echo warming up; exec sleep 3600"]
    healthcheck:
      test: ["CMD-SHELL", "echo still warming; exit 1"]
      interval: 200ms
      start_period: 1h
      start_interval: 200ms
""")
    result = stackup.run("up", "--wait", "--wait-timeout", "3", cwd=cwd, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not healthy after 3s" in result.stderr
    assert "still warming" in result.stderr and "warming up" in result.stdout
    stackup.run("down", "-t", "1", cwd=cwd)


def test_up_wait_covers_selected_services_and_their_dependencies_only(
    stackup: Stackup, tmp_path: Path
) -> None:
    cwd = stackup.project(tmp_path, f"""
services:{DB_HEALTHY_AFTER_A_DELAY}
  app:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sleep", "3600"]
    depends_on:
      db: {{condition: service_healthy}}
  broken:
    image: $IMAGE
    network_mode: none
    command: ["sh", "-c", "echo seed failed; exit 1"]
    x-stackup: {{job: true}}
""")
    usage = stackup.run("up", "--wait", "--abort-on-container-exit", cwd=cwd, check=False)
    assert usage.returncode == 2 and "--wait" in usage.stderr

    # `--wait` implies `-d`: it returns once app and its database are ready, and leaves them running
    result = stackup.run("up", "--wait", "app", cwd=cwd, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    ps = _ps(stackup, cwd)
    assert ps["db"]["Health"] == "healthy" and ps["app"]["State"] == "running"
    assert "broken" not in ps

    # --no-deps waits for the named service alone
    stackup.run("stop", "db", cwd=cwd)
    result = stackup.run("up", "--wait", "--no-deps", "--force-recreate", "app", cwd=cwd, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    ps = _ps(stackup, cwd)
    assert ps["app"]["State"] == "running" and ps["db"]["State"] == "exited"

    # a one-shot job's target is "exited 0": one that fails makes `up --wait` fail, with its log
    failed = stackup.run("up", "--wait", "--no-deps", "broken", cwd=cwd, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "did not become completed: exit code 1" in failed.stderr and "seed failed" in failed.stdout
    stackup.run("down", "-t", "1", cwd=cwd)


@pytest.mark.docker_only("Podman restarts a crashed container after a fixed 100 ms, not Docker's "
                         "doubling backoff this test checks")
def test_engine_restarts_a_crash_with_backoff_after_the_cli_exited(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  crasher:
    image: $IMAGE
    network_mode: none
    restart: on-failure:3
    command: ["sh", "-c", "echo crashing; exit 7"]
  keeper:
    image: $IMAGE
    init: true
    network_mode: none
    restart: always
    command: ["sleep", "3600"]
""")
    stackup.run("up", "-d", cwd=cwd)  # the CLI is gone from here on
    stackup.run("stop", "keeper", cwd=cwd)

    def given_up() -> bool:
        crasher = _ps(stackup, cwd)["crasher"]
        return crasher["State"] == "exited" and crasher["RestartCount"] == 3

    _eventually("three restarts of crasher", given_up)
    assert _ps(stackup, cwd)["crasher"]["ExitCode"] == 7

    events = [e for e in _events(stackup, cwd) if e["attributes"].get("io.stackup.service") == "crasher"]
    if not stackup.docker:  # Docker has no restart event: a policy restart is a die, then a start
        restarts = [int(e["attributes"]["restartCount"]) for e in events if e["action"] == "restart"]
        assert restarts == [1, 2, 3], "on-failure:3 means three restarts, then no more"
    dies = [_time(e["time"]) for e in events if e["action"] == "die"]
    starts = [_time(e["time"]) for e in events if e["action"] == "start"]
    assert len(dies) == 4 and len(starts) == 4
    for n, (died, restarted) in enumerate(zip(dies, starts[1:], strict=False)):
        floor = INITIAL_DELAY_S * 2**n  # Docker's backoff: 100 ms, doubling
        assert (restarted - died).total_seconds() >= floor, f"restart {n + 1} came before its backoff"

    keeper = _ps(stackup, cwd)["keeper"]
    assert keeper["State"] == "exited" and keeper["RestartCount"] == 0, "a user's stop is never undone"
    stackup.run("down", "-t", "1", cwd=cwd)


@pytest.mark.native_only("stops stackup's engine and kills a container while no engine runs; the "
                         "Docker daemon is shared and is never stopped by the tests")
def test_unless_stopped_comes_back_after_the_engine_restarts(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  keeper:
    image: $IMAGE
    init: true
    network_mode: none
    restart: unless-stopped
    command: ["sleep", "3600"]
  parked:
    image: $IMAGE
    init: true
    network_mode: none
    restart: unless-stopped
    command: ["sleep", "3600"]
""")
    stackup.run("up", "-d", cwd=cwd)
    stackup.run("stop", "parked", cwd=cwd)
    pid = int(_inspect(stackup, cwd, "keeper")["pid"])
    stackup.run("engine", "stop")
    os.kill(pid, signal.SIGKILL)  # keeper dies while no engine runs

    def back() -> bool:
        keeper = _ps(stackup, cwd)["keeper"]  # starts an engine on demand, which re-adopts
        return keeper["State"] == "running" and keeper["RestartCount"] >= 1

    _eventually("keeper restarted by the new engine", back)
    assert _inspect(stackup, cwd, "keeper")["pid"] != pid
    assert _ps(stackup, cwd)["parked"]["State"] == "exited", "unless-stopped honours the user's stop"
    stackup.run("down", "-t", "1", cwd=cwd)


def test_wait_returns_the_exit_code_and_inspect_shows_health(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  job:
    image: $IMAGE
    network_mode: none
    command: ["sh", "-c", "sleep 1; exit 5"]
  ok:
    image: $IMAGE
    network_mode: none
    command: ["sh", "-c", "sleep 1"]
  probed:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD-SHELL", "echo probe-says-hi"]
      interval: 200ms
""")
    stackup.run("up", "-d", cwd=cwd)
    waited = stackup.run("wait", "job", cwd=cwd, check=False)
    assert waited.returncode == 5 and waited.stdout.split()[-1] == "5"
    assert stackup.run("wait", "ok", cwd=cwd, check=False).returncode == 0

    def healthy() -> bool:
        return bool(_inspect(stackup, cwd, "probed")["health"]["status"] == "healthy")

    _eventually("probed healthy", healthy)
    health = _inspect(stackup, cwd, "probed")["health"]
    assert health["failing_streak"] == 0
    assert health["log"] and "probe-says-hi" in health["log"][-1]["output"]
    assert health["log"][-1]["exit_code"] == 0
    stackup.run("down", "-t", "1", cwd=cwd)


HOOKED = """
services:
  web:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sleep", "3600"]
    environment:
      ROLE: ${ROLE:-blue}
    volumes: [data:/data]
    post_start:
      - command: ["sh", "-c", "chmod 777 /data; echo started >> /data/post_start"]
      - command: ["sh", "-c", "echo \\"$$GREETING $$(id -u) $$(pwd) $$ROLE\\" > hook.out"]
        user: nobody
        working_dir: /data
        environment:
          GREETING: hi
      - command: ["sh", "-c", "grep CapEff /proc/self/status > /data/caps_privileged"]
        privileged: true
      - command: ["sh", "-c", "grep CapEff /proc/self/status > /data/caps_plain"]
    pre_stop:
      - command: ["sh", "-c", "echo \\"stopping $$ROLE\\" >> /data/pre_stop"]
  observer:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sleep", "3600"]
    volumes: [data:/data]
volumes:
  data: {}
"""


def test_post_start_and_pre_stop_hooks_run_in_the_container(stackup: Stackup, tmp_path: Path) -> None:
    if stackup.docker and not docker_privileged_exec():
        pytest.skip("Docker backend: this daemon refuses every privileged exec (`docker exec --privileged` "
                    "fails too: its capability bounding set lacks one it asks for)")
    cwd = stackup.project(tmp_path, HOOKED)
    stackup.run("up", "--wait", cwd=cwd)

    def read(name: str) -> str:
        return stackup.run("exec", "-T", "observer", "cat", f"/data/{name}", cwd=cwd).stdout

    assert read("post_start").split() == ["started"]
    assert read("hook.out").split() == ["hi", "65534", "/data", "blue"], "user, working_dir, environment"
    assert read("caps_privileged") != read("caps_plain"), "privileged hooks get every capability"

    stackup.run("stop", "web", cwd=cwd)
    assert read("pre_stop").split() == ["stopping", "blue"]
    stackup.run("start", "web", cwd=cwd)
    assert read("post_start").split() == ["started", "started"]

    # a recreate stops the old container: its pre_stop runs with the old environment
    (cwd / ".env").write_text("ROLE=green\n")
    stackup.run("up", "-d", cwd=cwd)
    assert read("pre_stop").split() == ["stopping", "blue", "stopping", "blue"]
    assert read("hook.out").split()[-1] == "green"

    if not stackup.docker:  # hooks are the engine's own events; Docker's stream has only the execs
        hooks = [e for e in _events(stackup, cwd) if e["action"] == "hook"]
        assert {e["attributes"]["hook"] for e in hooks} == {"post_start", "pre_stop"}
    stackup.run("down", "-v", "-t", "1", cwd=cwd)


def test_failing_post_start_fails_the_start_with_its_output(stackup: Stackup, tmp_path: Path) -> None:
    cwd = stackup.project(tmp_path, """
services:
  web:
    image: $IMAGE
    init: true
    network_mode: none
    command: ["sleep", "3600"]
    post_start:
      - command: ["sh", "-c", "echo 'cannot register instance'; exit 3"]
  after:
    image: $IMAGE
    network_mode: none
    command: ["sleep", "3600"]
    depends_on: [web]
""")
    result = stackup.run("up", "-d", cwd=cwd, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "post_start hook" in result.stderr and "exit code 3" in result.stderr
    assert "cannot register instance" in result.stderr
    assert "after <- web" in result.stderr, "what the failed start blocked is named"
    if not stackup.docker:  # hooks are the engine's own events; Docker's stream has only the execs
        failed = [e for e in _events(stackup, cwd) if e["action"] == "hook-failed"]
        assert failed and failed[0]["attributes"]["exitCode"] == "3"
    stackup.run("down", "-t", "1", cwd=cwd)
