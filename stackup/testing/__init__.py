"""Stacks as pytest fixtures: up once per session, module or test, always torn down.

    # conftest.py
    from stackup.testing import stack_fixture
    web_stack = stack_fixture("compose.yaml", scope="session")

    # test_web.py
    def test_home(web_stack):
        assert urllib.request.urlopen(web_stack.url("web", 8000)).status == 200

The plugin (`stackup.testing.plugin`, registered under the `pytest11` entry point `stackup`)
adds `--stackup-keep`, the `stackup` marker with its `stackup_stack` fixture, logs in failing
tests' reports and clean exits on SIGTERM. See docs/testing.md.
"""

from __future__ import annotations

from stackup.testing.environment import StackEnvironment, StackSpec
from stackup.testing.fixture import stack_fixture

__all__ = ["StackEnvironment", "StackSpec", "stack_fixture"]
