"""`Stack` end to end on the real engine: the same path the CLI takes, without the CLI."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from stackup.api import Stack
from stackup.api.readiness import Diagnosis
from stackup.errors import NotFound, StackFailed, UsageError
from stackup.runtime.base import ContainerState, Health
from stackup.spec.errors import SpecError

IMAGE = "stackup-test/busybox:latest"
pytestmark = pytest.mark.engine


def _write(directory: Path, text: str) -> str:
    (directory / "compose.yaml").write_text(text.replace("$IMAGE", IMAGE))
    return f"api{uuid.uuid4().hex[:8]}"


def test_up_wait_exec_logs_run_and_down(api_env: Path) -> None:
    name = _write(api_env, """
services:
  job:
    image: $IMAGE
    command: ["sh", "-c", "echo migrated > /shared/done"]
    volumes: [shared:/shared]
    x-stackup: {job: true}
  app:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "echo started; exec sleep 3600"]
    volumes: [shared:/shared]
    depends_on:
      job: {condition: service_completed_successfully}
volumes:
  shared: {}
""")
    stack = Stack.load(project_name=name)
    try:
        result = stack.up(wait=True)
        assert result.changed and result.outcome.ok
        app = stack.container("app")
        assert app.state is ContainerState.RUNNING and app.health is Health.NONE
        assert stack.container("job").exit_code == 0
        out = stack.exec("app", ["cat", "/shared/done"])
        assert (out.exit_code, out.stdout) == (0, b"migrated\n")
        assert [e.text for e in stack.logs("app")] == ["started"]
        assert stack.run("app", ["sh", "-c", "exit 7"], no_deps=True, rm=True).exit_code == 7
        assert not stack.plan().has_changes
        stack.restart(["app"])
        assert stack.container("app").state is ContainerState.RUNNING
    finally:
        stack.down(volumes=True)
    assert stack.ps() == []
    stack.close()


def test_unreachable_target_raises_with_the_culprits_diagnosis(api_env: Path) -> None:
    name = _write(api_env, """
services:
  db:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "echo db says why; exec sleep 3600"]
    healthcheck: {test: ["CMD", "false"], interval: 1s, retries: 1}
  web:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
    depends_on: {db: {condition: service_healthy}}
""")
    stack = Stack.load(project_name=name)
    try:
        with pytest.raises(StackFailed) as failed:
            stack.up(wait=True, wait_timeout=30)
        (found,) = [d for d in failed.value.diagnoses if isinstance(d, Diagnosis)]
        assert found.service == "db" and "db says why" in found.log_tail
    finally:
        stack.down()
        stack.close()


def test_commands_by_name_need_no_stack_file(api_env: Path) -> None:
    one = "services:\n  one:\n    image: $IMAGE\n    init: true\n    command: [sleep, '1h']\n"
    name = _write(api_env, one)
    with Stack.load(project_name=name) as stack:
        stack.up()
    (api_env / "compose.yaml").write_text("services: [broken\n")
    with pytest.raises(SpecError):
        Stack.load(project_name=name)
    by_name = Stack.by_name(name)
    assert [c.labels["io.stackup.service"] for c in by_name.ps()] == ["one"]
    with pytest.raises(UsageError):
        by_name.plan()
    with pytest.raises(NotFound):
        by_name.container("two")
    by_name.down()
    assert by_name.ps() == []
    by_name.close()
