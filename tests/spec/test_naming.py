"""`resolve_project_name` gives the name `load` gives, without building the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.spec import load
from stackup.spec.errors import SpecError
from stackup.spec.naming import resolve_project_name
from stackup.spec.options import LoadOptions

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "awesome-compose"
STACKS = sorted(CORPUS.glob("*/compose.y*ml"))


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.parent.name)
def test_same_name_as_a_full_load_over_the_corpus(stack: Path, tmp_path: Path) -> None:
    options = LoadOptions(files=[stack], environ={"PLEX_MEDIA_PATH": str(tmp_path)}, working_dir=tmp_path)
    assert resolve_project_name(options) == load(options).project.name


@pytest.mark.parametrize(
    ("files", "environ", "project_name", "expected"),
    [
        ({"compose.yaml": "services: {a: {image: x}}\n"}, {}, None, "projdir"),
        ({"compose.yaml": "name: Shop_1\nservices: {a: {image: x}}\n"}, {}, None, "shop_1"),
        (
            {"compose.yaml": "name: ${STAGE}-app\nservices: {a: {image: x}}\n"},
            {"STAGE": "qa"},
            None,
            "qa-app",
        ),
        (
            {"compose.yaml": "name: ${STAGE}-app\nservices: {a: {image: x}}\n", ".env": "STAGE=dev\n"},
            {},
            None,
            "dev-app",
        ),
        (
            {
                "compose.yaml": "name: a\nservices: {a: {image: x}}\n",
                ".env": "COMPOSE_PROJECT_NAME=fromenv\n",
            },
            {},
            None,
            "fromenv",
        ),
        (
            {"compose.yaml": "name: a\nservices: {a: {image: x}}\n"},
            {"COMPOSE_PROJECT_NAME": "shell"},
            None,
            "shell",
        ),
        ({"compose.yaml": "name: a\nservices: {a: {image: x}}\n"}, {}, "flag", "flag"),
        (
            {"compose.yaml": "name: a\nservices: {a: {image: x}}\n", "compose.override.yaml": "name: b\n"},
            {},
            None,
            "b",
        ),
    ],
    ids=[
        "directory",
        "name-normalised",
        "interpolated",
        "dotenv-variable",
        "dotenv-compose-var",
        "shell-var",
        "flag",
        "override-wins",
    ],
)
def test_same_name_as_a_full_load(
    files: dict[str, str], environ: dict[str, str], project_name: str | None, expected: str, tmp_path: Path
) -> None:
    directory = tmp_path / "Proj Dir"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    options = LoadOptions(project_name=project_name, environ=environ, working_dir=directory)
    assert resolve_project_name(options) == load(options).project.name == expected


def test_a_stack_the_model_rejects_still_has_a_name(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("name: broken\nservices:\n  web: {image: x, enviroment: {}}\n")
    options = LoadOptions(working_dir=tmp_path)
    with pytest.raises(SpecError):
        load(options)
    assert resolve_project_name(options) == "broken"


def test_no_stack_file_is_a_located_error_unless_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no stack file found"):
        resolve_project_name(LoadOptions(working_dir=tmp_path))
    assert resolve_project_name(LoadOptions(working_dir=tmp_path, project_name="given")) == "given"
