"""`StackEnvironment` and its names: isolation by project name, and what a pinned port does."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stackup.errors import StackFailed, UsageError
from stackup.testing.environment import StackEnvironment, StackSpec, resolve_files, unique_name
from tests.testing._helpers import STACK, leftovers


def test_names_are_valid_project_names_that_say_whose_they_are() -> None:
    spec = StackSpec(files=(Path("/srv/My App.v2/compose.yaml"),))
    assert spec.base_name == "myappv2"
    assert StackSpec(files=(), project_name="--Odd Name!").base_name == "oddname"
    assert StackSpec(files=(Path("/compose.yaml"),)).base_name == "stackup"
    first, second = unique_name("web", "gw1"), unique_name("web", "gw1")
    assert first.startswith("web-gw1-") and first != second
    assert unique_name("web").startswith("web-main-")


def test_relative_stack_files_are_the_declaring_modules(tmp_path: Path) -> None:
    assert resolve_files("compose.yaml", tmp_path) == (tmp_path / "compose.yaml",)
    assert resolve_files(["a.yaml", "/abs/b.yaml"], tmp_path) == (tmp_path / "a.yaml", Path("/abs/b.yaml"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.engine
def test_a_pinned_host_port_fails_the_second_project_with_the_engines_error(tmp_path: Path) -> None:
    """Isolation covers names and ephemeral ports; a host port the stack file pins is one port
    on the machine, so a second project (another xdist worker) fails set-up, saying which."""
    port = free_port()
    pinned = tmp_path / "compose.yaml"
    pinned.write_text(STACK.read_text().replace("127.0.0.1::8000", f"127.0.0.1:{port}:8000"))
    spec = StackSpec(files=(pinned,), project_name="pinned")
    first = StackEnvironment(spec, unique_name("pinned", "gw0"))
    second = StackEnvironment(spec, unique_name("pinned", "gw1"))
    try:
        first.start()
        assert first.url("web", 8000) == f"http://127.0.0.1:{port}/"
        with pytest.raises(StackFailed) as failed:
            second.start()
        assert f"port 127.0.0.1:{port}/tcp is published by container {first.name}-web-1" in str(failed.value)
    finally:
        second.remove()
        first.remove()
    assert leftovers(first.name) == leftovers(second.name) == []


def test_missing_stack_file_is_named(tmp_path: Path) -> None:
    env = StackEnvironment(StackSpec(files=(tmp_path / "nope.yaml",)), "missing-main-000000")
    with pytest.raises(UsageError, match=r"stack file not found: .*nope\.yaml"):
        env.start()
