"""BuildKit's own parser fixtures: every positive one dumps exactly to its `result`, every
negative one is refused with a located DockerfileError (and the CLI says the same)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.build.dockerfile import parse_file
from stackup.errors import DockerfileError
from tests.build.corpus import PARSER_CORPUS


def _cases(kind: str) -> list[Path]:
    root = PARSER_CORPUS / kind
    return sorted(p for p in root.iterdir() if (p / "Dockerfile").is_file()) if root.is_dir() else []


def test_corpus_is_present() -> None:
    assert len(_cases("testfiles")) >= 20, f"parser fixtures missing under {PARSER_CORPUS}"
    assert len(_cases("testfiles-negative")) >= 4


@pytest.mark.parametrize("case", _cases("testfiles"), ids=lambda p: p.name)
def test_positive_fixture(case: Path) -> None:
    assert parse_file(case / "Dockerfile").dump() == (case / "result").read_text()


@pytest.mark.parametrize("case", _cases("testfiles-negative"), ids=lambda p: p.name)
def test_negative_fixture(case: Path) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_file(case / "Dockerfile")
    assert info.value.line >= 1
    assert str(info.value).startswith(f"{case / 'Dockerfile'}:{info.value.line}:")


@pytest.mark.parametrize("case", _cases("testfiles")[:3], ids=lambda p: p.name)
def test_cli_prints_the_dump(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stackup.cli.dockerfile_cmd import parse

    parse(case / "Dockerfile")
    assert capsys.readouterr().out == (case / "result").read_text()


def test_registered_command_end_to_end(tmp_path: Path) -> None:
    """`register(app)` as main.py will call it: the command parses, and refusals exit 3 located."""
    import typer
    from typer.testing import CliRunner

    from stackup.cli.dockerfile_cmd import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    register(app)
    good = tmp_path / "Dockerfile"
    good.write_text("FROM scratch\nCOPY <<EOF /x\nhi\nEOF\n")
    result = CliRunner().invoke(app, ["dockerfile", "parse", str(good), "--check"])
    assert result.exit_code == 0, result.output
    assert result.output == '(from "scratch")\n(copy "<<EOF" "/x")\n'
    bad = tmp_path / "Bad.Dockerfile"
    bad.write_text("FROM scratch\nADD http://x/y /y\n")
    refused = CliRunner().invoke(app, ["dockerfile", "parse", str(bad), "--check"])
    assert isinstance(refused.exception, DockerfileError) and refused.exception.exit_code == 3
    assert str(refused.exception).startswith(f"{bad}:2:1: ADD from a URL is not supported")
