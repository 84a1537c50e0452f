"""`environment` values marked secret (`x-stackup-secret`, or read from a `secrets:` entry with an
`environment:` source) are never printed: not by `config`, `plan`, `up`'s progress, `inspect`
or `logs` (the container echoes them), while the container still gets the real values and
unmarked values still show."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.spec.secretenv import MASK
from tests.e2e.conftest import Stackup

pytestmark = pytest.mark.engine

STACK = """
services:
  app:
    image: $IMAGE
    command: ["sh", "-c", "echo token=$$API_TOKEN from-env=$$FROM_ENV plain=$$PLAIN; exec sleep 3600"]
    network_mode: none
    stop_grace_period: 1s
    environment:
      API_TOKEN: ${TOKEN}
      FROM_ENV: ${ENV_SECRET}
      PLAIN: visible-plain-value
    x-stackup-secret: [API_TOKEN]
    secrets: [envsec]
secrets:
  envsec:
    environment: ENV_SECRET
"""


def _tokens() -> tuple[str, str]:
    return f"tok-{secrets.token_hex(8)}", f"envsec-{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def project(stackup: Stackup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cwd = stackup.project(tmp_path_factory.mktemp("secretenv"), STACK, prefix="senv")
    yield cwd
    stackup.run("down", "-t", "1", cwd=cwd, check=False)


def _set(cwd: Path, token: str, env_secret: str) -> None:
    (cwd / ".env").write_text(f"TOKEN={token}\nENV_SECRET={env_secret}\n")


def test_marked_values_are_masked_everywhere_they_would_be_printed(stackup: Stackup, project: Path) -> None:
    token, env_secret = _tokens()
    _set(project, token, env_secret)
    config = stackup.run("config", cwd=project)
    assert f"API_TOKEN: {MASK}" in config.stdout.replace("'", "").replace('"', "")
    assert "visible-plain-value" in config.stdout
    shown = [config, stackup.run("config", "--format", "json", cwd=project),
             stackup.run("plan", cwd=project, check=False), stackup.run("up", "-d", cwd=project),
             stackup.run("inspect", cwd=project), stackup.run("ps", "--format", "json", cwd=project)]
    for _ in range(50):  # the container's first line, which holds both values
        logs = stackup.run("logs", cwd=project)
        if "plain=" in logs.stdout:
            break
    shown.append(logs)
    assert f"token={MASK} from-env={MASK} plain=visible-plain-value" in logs.stdout
    for proc in shown:
        printed = proc.stdout + proc.stderr
        assert token not in printed and env_secret not in printed, proc.args
    real = stackup.run("exec", "-T", "app", "sh", "-c", 'test "$API_TOKEN" = "$1" && echo same', "-", token,
                       cwd=project, check=False)  # fmt: skip
    assert "same" in real.stdout  # masked in print only: the container has the real value


def test_a_changed_secret_is_masked_on_both_sides_of_the_plan(stackup: Stackup, project: Path) -> None:
    old_token, env_secret = _tokens()
    _set(project, old_token, env_secret)
    stackup.run("up", "-d", cwd=project)
    new_token, _ = _tokens()
    _set(project, new_token, env_secret)
    plan = stackup.run("plan", cwd=project, check=False)
    printed = plan.stdout + plan.stderr
    assert "API_TOKEN" in printed or "environment" in printed, printed  # the change is shown ...
    assert old_token not in printed and new_token not in printed, printed  # ... but not the values
    up = stackup.run("up", "-d", cwd=project)
    assert old_token not in up.stdout + up.stderr and new_token not in up.stdout + up.stderr
