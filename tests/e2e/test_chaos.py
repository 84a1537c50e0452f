"""The chaos run in short (`bench/chaos.py` has the long one): one SIGKILL per victim kind and
per operation (up, down, recreate, build, pull from a local registry, watch) at a random point,
and after each the next `up` converges with the volume's data intact and `down -v` leaves
nothing of the root behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.chaos import Chaos, Trial

pytestmark = pytest.mark.engine

#: (operation, victim): every victim kind once, every operation at least once.
DRAW = [("up", "engine"), ("down", "cli"), ("recreate", "conmon"), ("recreate", "init"),
        ("build", "engine"), ("pull", "cli"), ("watch", "conmon")]


@pytest.mark.timeout(900)  # seven trials of about 10 s on a quiet machine; several times that under load
def test_short_chaos_run(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("the chaos run needs root (it runs the real engine)")
    chaos = Chaos(tmp_path / "root", seed=int.from_bytes(os.urandom(4), "big"))
    trials: list[Trial] = []
    left: list[str] = []
    try:
        chaos.setup(measure=False)
        trials = [chaos.trial(index, op, target) for index, (op, target) in enumerate(DRAW)]
    finally:
        left = chaos.close()
    failed = [t for t in trials if not t.ok]
    assert not failed, failed
    assert not left, left
