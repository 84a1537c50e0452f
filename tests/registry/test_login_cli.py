"""`stackup login/logout` commands (registered on a bare typer app, as main.py will register them)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stackup.cli import login_cmd
from stackup.errors import UsageError
from tests.registry.conftest import PASSWORD, USER, Secure


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    login_cmd.register(app)
    return app


def test_login_and_logout(app: typer.Typer, secure_registry: Secure, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    host = secure_registry.server.host  # loopback: TLS without verification, as Docker does
    runner = CliRunner()
    result = runner.invoke(app, ["login", host, "-u", USER, "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert f"Login Succeeded ({host})" in result.output
    saved = json.loads((tmp_path / "docker" / "config.json").read_text())["auths"][host]["auth"]
    assert base64.b64decode(saved).decode() == f"{USER}:{PASSWORD}"
    result = runner.invoke(app, ["logout", host])
    assert result.exit_code == 0 and f"Removing login credentials for {host}" in result.output
    result = runner.invoke(app, ["logout", host])
    assert f"Not logged in to {host}" in result.output


def test_password_stdin_needs_a_user(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["login", "reg.example", "--password-stdin"], input="pw\n")
    assert isinstance(result.exception, UsageError)
    assert "--password-stdin needs --username" in str(result.exception)
