"""docs/api.md is true: its YAML is the project, its Python blocks run in order on the real engine."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from stackup.api import Stack

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
pytestmark = pytest.mark.engine


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_api_page_runs_as_written(api_env: Path) -> None:
    (yaml,) = _blocks("yaml")
    (api_env / "compose.yaml").write_text(yaml)
    (api_env / "www").mkdir()
    (api_env / "www" / "index.html").write_text("it works\n")
    project = f"doc{uuid.uuid4().hex[:8]}"
    scope: dict[str, object] = {"project": project}
    try:
        for block in _blocks("python"):
            exec(compile(block, str(DOC), "exec"), scope)
    finally:
        with Stack.by_name(project) as leftover:
            leftover.down(volumes=True)
