"""Shared test fixtures: a clean environment for interpolation, a private STACKUP_ROOT."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_LEAKY_PREFIXES = ("COMPOSE_", "STACKUP_", "DOCKER_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Strip variables that would change how a stack file loads (COMPOSE_*, STACKUP_*)."""
    for key in list(os.environ):
        if key.startswith(_LEAKY_PREFIXES):
            monkeypatch.delenv(key, raising=False)
    yield


@pytest.fixture
def stackup_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private engine root so two runs, or two tests, never share state."""
    root = tmp_path / "stackup-root"
    root.mkdir()
    monkeypatch.setenv("STACKUP_ROOT", str(root))
    return root
