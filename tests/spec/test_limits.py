"""Hostile stack files end in one located `SpecError`, quickly and in bounded memory.

Regression tests for what fuzzing found: a few-kilobyte alias bomb expanded without bound
(billions of values), nesting ten thousand levels deep raised RecursionError, and a value with
a few hundred `${A:-x}` overflowed the stack (one recursion per substitution, and a rescan of
the rest of the line per substitution).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.spec import LoadOptions, load
from stackup.spec.errors import SpecError
from stackup.spec.interpolate import MAX_NESTING, InterpolationError, substitute
from stackup.spec.yamlparse import MAX_DEPTH, MAX_FILE_BYTES


def load_error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "compose.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(SpecError) as err:
        load(LoadOptions(working_dir=tmp_path, environ={}))
    return str(err.value)


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    levels = ['  a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    text = "x-bomb:\n" + "\n".join(levels) + "\nservices:\n  web:\n    image: busybox\n"
    message = load_error(tmp_path, text)
    assert message.startswith("compose.yaml:") and "alias bomb" in message


def test_aliases_a_real_stack_uses_are_fine(tmp_path: Path) -> None:
    services = "".join(f"  s{i}:\n    <<: *common\n    image: busybox\n" for i in range(300))
    (tmp_path / "compose.yaml").write_text(
        "x-common: &common\n  environment: {A: '1', B: '2'}\n  labels: [a=1, b=2]\n"
        f"services:\n{services}")
    assert len(load(LoadOptions(working_dir=tmp_path, environ={})).project.services) == 300


@pytest.mark.parametrize("value", ["[" * 10_000 + "]" * 10_000, "{a: " * 10_000 + "1" + "}" * 10_000,
                                   "[" * 40_000 + "]" * 40_000, "{a: " * 500_000 + "1" + "}" * 500_000,
                                   "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)],
                         ids=["lists-10k", "maps-10k", "lists-40k-overflowed-the-c-stack",
                              "maps-500k-parsed-in-quadratic-time", "just-too-deep"])
def test_deep_nesting_is_refused_where_it_gets_too_deep(tmp_path: Path, value: str) -> None:
    message = load_error(tmp_path, f"services:\n  web:\n    image: busybox\nx-deep: {value}\n")
    assert message.startswith("compose.yaml:4:") and f"nested deeper than {MAX_DEPTH} levels" in message


def test_brackets_in_quoted_scalars_and_comments_are_not_nesting(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: busybox\n    command: ['" + "[" * 100 + "', \"" + "{" * 100 + "\"]\n"
        "    # " + "[" * 100 + "\n")
    command = load(LoadOptions(working_dir=tmp_path, environ={})).project.services["web"].command
    assert command == ["[" * 100, "{" * 100]


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    filler = b"# " + b"x" * 1000 + b"\n"
    message = load_error(tmp_path, b"services: {}\n" + filler * (MAX_FILE_BYTES // len(filler) + 1))
    assert message == "compose.yaml: file is larger than 4 MiB, the limit for stack files"


def test_an_endless_file_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="larger than 4 MiB"):
        load(LoadOptions(working_dir=tmp_path, files=[Path("/dev/zero")], environ={}))
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    with pytest.raises(SpecError, match="larger than 16 MiB"):
        load(LoadOptions(working_dir=tmp_path, env_files=[Path("/dev/zero")], environ={}))


def test_many_substitutions_in_one_value() -> None:
    assert substitute("${A:-x}" * 5000, {}.get) == "x" * 5000
    assert substitute("${A:-x}y}" * 2000, {"A": "v"}.get) == "vy}" * 2000


def test_nested_defaults_are_bounded() -> None:
    assert substitute("${A:-" * MAX_NESTING + "x" + "}" * MAX_NESTING, {}.get) == "x"
    with pytest.raises(InterpolationError, match="nested deeper than"):
        substitute("${A:-" * 5000 + "x" + "}" * 5000, {}.get)
