"""The engine's HTTP API under schemathesis, from its own OpenAPI document, in short
(`bench/fuzz/api.py` runs more examples): no 5xx, every 4xx an `ErrorBody` with a message, no
request left hanging, and afterwards the engine still creates, lists, runs and removes, and
nothing of its root is left on the machine."""

from __future__ import annotations

import os

import pytest

from bench.fuzz.api import campaign

pytestmark = pytest.mark.engine


def test_api_under_schemathesis_has_no_server_errors_and_keeps_its_state() -> None:
    if os.geteuid() != 0:
        pytest.fail("the API fuzz runs the real engine (root)")
    result = campaign(examples=4, seed=int.from_bytes(os.urandom(4), "big"))
    assert result["requests"] > 300
    assert result["findings"] == []
    assert result["server_errors"] == 0
    assert result["broken_afterwards"] == []
    assert result["leaked"] == []
    assert result["shutdown_status"] == 204
