"""`stack_fixture` and the `stackup` marker used directly by this module, on the real engine."""

from __future__ import annotations

import urllib.request

import pytest

from stackup.runtime import labels as lbl
from stackup.runtime.base import ContainerState, Health
from stackup.testing import StackEnvironment, stack_fixture
from tests.testing._helpers import leftovers

pytestmark = pytest.mark.engine

web = stack_fixture("stack/compose.yaml", scope="module", project_name="plugin-direct")

seen: list[str] = []


def test_the_job_gated_the_healthy_server(web: StackEnvironment) -> None:
    seen.append(web.name)
    assert web.name.startswith("plugin-direct-")
    assert web.stack.container("setup").exit_code == 0
    server = web.stack.container("web")
    assert (server.state, server.health) == (ContainerState.RUNNING, Health.HEALTHY)
    assert urllib.request.urlopen(web.url("web", 8000), timeout=5).read() == b"hello from stackup\n"


def test_port_exec_and_logs_of_the_same_stack(web: StackEnvironment) -> None:
    seen.append(web.name)
    host, port = web.port("web", 8000)
    assert host == "127.0.0.1" and port > 0
    assert web.url("web", 8000, path="/index.html") == f"http://127.0.0.1:{port}/index.html"
    out = web.exec("web", ["cat", "/www/index.html"])
    assert (out.exit_code, out.stdout) == (0, b"hello from stackup\n")
    assert web.logs("setup") == "preparing\nprepared"
    assert web.logs("web").splitlines()[0] == "web starting"
    assert "setup | prepared" in web.log_report(10)
    assert len(set(seen)) == 1, "a module-scoped stack is brought up once for the module"


@pytest.mark.stackup("stack/compose.yaml", services=["setup"], project_name="plugin-marker")
def test_marker_brings_up_a_stack_for_one_test(stackup_stack: StackEnvironment) -> None:
    seen.append(stackup_stack.name)
    assert stackup_stack.name.startswith("plugin-marker-")
    assert [c.labels[lbl.SERVICE] for c in stackup_stack.ps()] == ["setup"]


def test_every_stack_of_this_module_but_its_own_is_gone(web: StackEnvironment) -> None:
    others = sorted(set(seen) - {web.name})
    assert len(others) == 1 and others[0].startswith("plugin-marker-")
    assert leftovers(others[0]) == []
