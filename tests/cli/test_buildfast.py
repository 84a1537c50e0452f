"""The argv the `build` shortcut takes on (anything else goes to the full CLI), and `--build-arg`."""

from __future__ import annotations

import pytest

from stackup.cli.buildfast import build_args, split_build_argv
from stackup.cli.fastpath import builds_first, split_up_argv
from stackup.errors import UsageError


def test_plain_builds_are_taken_with_their_globals_services_args_and_quiet() -> None:
    assert split_build_argv(["build"]) == ([], [], [], False)
    assert split_build_argv(["-f", "a.yaml", "--project-name=p", "build", "-q", "web", "db"]) == (
        ["-f", "a.yaml", "--project-name", "p"], ["web", "db"], [], True)
    assert split_build_argv(["build", "--build-arg", "A=1", "--build-arg=B", "web"]) == (
        [], ["web"], ["A=1", "B"], False)
    assert split_build_argv(["-p", "build", "build"]) == (["-p", "build"], [], [], False)


@pytest.mark.parametrize("argv", [
    ["build", "--no-cache"], ["build", "--pull"], ["--progress", "json", "build"], ["--verbose", "build"],
    ["up", "build"], ["build", "--frobnicate"], ["-f"], ["builder", "prune"],
])
def test_anything_else_takes_the_full_path(argv: list[str]) -> None:
    assert split_build_argv(argv) is None


def test_build_args_from_the_command_line_and_the_environment() -> None:
    env = {"FROM_ENV": "e"}
    assert build_args(["A=1", "B=x=y", "FROM_ENV", "UNSET"], env) == {"A": "1", "B": "x=y", "FROM_ENV": "e"}
    with pytest.raises(UsageError):
        build_args(["=1"], env)


def test_up_detach_build_is_its_own_shortcut() -> None:
    assert split_up_argv(["up", "-d", "--build"]) == [] and builds_first(["up", "-d", "--build"])
    assert split_up_argv(["up", "-d"]) == [] and not builds_first(["up", "-d"])
    assert split_up_argv(["up", "--build"]) is None  # attached: never a shortcut
