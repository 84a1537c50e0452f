"""Inputs the fuzzers found that escaped as a Python exception instead of a located problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.spec import LoadOptions, load
from stackup.spec.errors import SpecError


@pytest.mark.parametrize(("files", "expected"), [
    ({"compose.yaml": "services:\n  web:\n    links: true\n"},
     "compose.yaml:3:5: services.web.links: expected a list, got true"),
    ({"compose.yaml": "services:\n  web:\n    volumes_from: 1\n"},
     "compose.yaml:3:5: services.web.volumes_from: expected a list, got 1"),
    ({"compose.yaml": "services:\n  web:\n    build: null\n",
      "compose.override.yaml": "services:\n  web:\n    build: {context: .}\n"}, None),
    ({"compose.yaml": "services:\n  web:\n    build: 5\n",
      "compose.override.yaml": "services:\n  web:\n    build: {context: .}\n"},
     "compose.override.yaml:3:5: services.web.build: cannot merge a mapping onto a scalar defined earlier"),
], ids=["links-not-a-list", "volumes_from-not-a-list", "build-null-then-mapping",
        "build-scalar-then-mapping"])
def test_found_by_fuzzing(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    options = LoadOptions(working_dir=tmp_path, environ={})
    if expected is None:
        assert load(options).project.services["web"].build is not None
        return
    with pytest.raises(SpecError) as err:
        load(options)
    assert str(err.value).startswith(expected)
