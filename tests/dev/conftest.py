"""Watch tests on the real engine: one private STACKUP_ROOT per module, the busybox image in it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engineroot import private_engine


@pytest.fixture(scope="module")
def engine_root() -> Iterator[Path]:
    yield from private_engine("stackup-watch-")


@pytest.fixture
def project_dir(engine_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """STACKUP_ROOT pointed at the module's engine; a fresh project directory as the cwd."""
    monkeypatch.setenv("STACKUP_ROOT", str(engine_root))
    directory = tmp_path / f"w{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory
