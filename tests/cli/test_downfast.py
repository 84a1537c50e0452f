"""`down` without the typer app (`cli/downfast.py`): the same options reach the same call as the
typer path, everything else is left to typer, and failures print and exit as `main.run` does."""

from __future__ import annotations

from typing import Any

import pytest

from stackup.cli import downfast
from stackup.cli.context import GlobalOptions
from stackup.cli.main import run
from stackup.errors import StackupError

ACCEPTED = [
    ["down"],
    ["down", "-t", "1"],
    ["down", "--timeout", "0.5", "-v"],
    ["down", "--timeout=2", "--volumes", "--remove-orphans"],
    ["-p", "demo", "-f", "a.yml", "--file=b.yml", "down"],
    ["--profile", "x", "--profile=y", "--env-file", "e.env", "--project-directory", "sub", "down"],
    ["--progress", "plain", "--parallel", "3", "--runtime", "native", "down", "-t", "7"],
    ["-p", "down", "down"],
]
LEFT_TO_TYPER = [
    ["down", "-t=1"], ["down", "-vt", "1"], ["down", "web"], ["down", "--help"], ["-v", "down"],
    ["down", "-t", "-1"], ["--parallel", "many", "down"], ["-p=x", "down"], ["down", "--volumes=1"],
    ["down", "--timeout", "soon"], ["--bogus", "down"], ["down", "--"], ["-p", "x"],
]  # fmt: skip


class _Called(Exception):
    pass


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[tuple[GlobalOptions, dict[str, Any]]]:
    """`GlobalOptions.named` answers a stack whose `down` records what it was given."""
    calls: list[tuple[GlobalOptions, dict[str, Any]]] = []

    class FakeStack:
        def __init__(self, options: GlobalOptions) -> None:
            self.options = options

        def down(self, **kwargs: Any) -> None:
            kwargs.pop("reporter")
            calls.append((self.options, kwargs))

    def named(self: GlobalOptions) -> FakeStack:
        return FakeStack(self)

    monkeypatch.setattr(GlobalOptions, "named", named)
    return calls


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_the_same_call_as_the_typer_path(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _capture(monkeypatch)
    assert run(list(argv)) == 0
    assert downfast.try_down(list(argv)) == 0
    assert len(calls) == 2
    assert calls[0] == calls[1]


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=" ".join)
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert downfast.parse_down(argv) is None


def test_a_failure_ends_as_main_run_ends_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def named(self: GlobalOptions) -> None:
        raise StackupError("no engine here: start one")

    monkeypatch.setattr(GlobalOptions, "named", named)
    assert run(["down"]) == StackupError.exit_code
    typer_err = capsys.readouterr().err
    assert downfast.try_down(["down"]) == StackupError.exit_code
    assert capsys.readouterr().err == typer_err
    assert "no engine here: start one" in typer_err

