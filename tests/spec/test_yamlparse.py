"""YAML in -> plain tree and source map out, or one located line per unreadable file."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.spec.errors import Location, SpecError
from stackup.spec.tree import Tag, Tagged
from stackup.spec.yamlparse import parse_file, parse_text


def _parse(text: str) -> dict[str, object]:
    return parse_text(text, Path("compose.yaml"), "compose.yaml")[0].tree


@pytest.mark.parametrize(("text", "expected"), [
    ("a: 1\nb: 1.5\nc: true\nd: null\ne: yes\n", {"a": 1, "b": 1.5, "c": True, "d": None, "e": "yes"}),
    ("a: 0x1F\nb: 1_000\nc: 0o17\n", {"a": 31, "b": 1000, "c": 15}),
    ("t: 2024-01-02\n", {"t": "2024-01-02"}),
    ("x: &anchor {image: a, tty: true}\ny: *anchor\n",
     {"x": {"image": "a", "tty": True}, "y": {"image": "a", "tty": True}}),
    ("x: &b {image: a, tty: true}\ny:\n  <<: *b\n  image: z\n",
     {"x": {"image": "a", "tty": True}, "y": {"image": "z", "tty": True}}),
    ("a: !reset []\nb: !override [1]\nc: !reset null\n",
     {"a": Tagged(Tag.RESET, []), "b": Tagged(Tag.OVERRIDE, [1]), "c": Tagged(Tag.RESET, "null")}),
])
def test_values(text: str, expected: dict[str, object]) -> None:
    assert _parse(text) == expected


def test_every_key_and_item_is_located() -> None:
    doc = parse_text("services:\n  web:\n    ports:\n      - '80:80'\n", Path("c.yaml"), "c.yaml")[0]
    assert doc.source_map.entries[("services", "web")] == Location("c.yaml", 2, 3)
    assert doc.source_map.entries[("services", "web", "ports", 0)] == Location("c.yaml", 4, 9)


def test_merge_key_values_are_located_at_the_anchor() -> None:
    doc = parse_text("x: &b\n  image: a\ny:\n  <<: *b\n", Path("c.yaml"), "c.yaml")[0]
    assert doc.source_map.entries[("y", "image")] == Location("c.yaml", 2, 3)


def test_several_documents() -> None:
    docs = parse_text("a: 1\n---\nb: 2\n", Path("c.yaml"), "c.yaml")
    assert [d.tree for d in docs] == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(("text", "message"), [
    ("services: [1\n", "compose.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>' "
                       "(while parsing a flow sequence at line 1, column 11)"),
    ("a: 1\na: 2\n", 'compose.yaml:2:1: a: duplicate key: "a" is already defined at line 1'),
    ("", "compose.yaml: empty file: a stack file needs at least a `services:` mapping"),
    ("# only a comment\n", "compose.yaml: empty file: a stack file needs at least a `services:` mapping"),
    ("- a\n- b\n", "compose.yaml:1:1: top level must be a mapping (services: ...), not a list"),
    ("just text\n", "compose.yaml:1:1: top level must be a mapping (services: ...), not a str scalar"),
    ("a:\n  b: !env x\n",
     "compose.yaml:2:3: a.b: unknown YAML tag !env (only !reset and !override are supported)"),
    ("a:\n  1: x\n", "compose.yaml:2:3: a: mapping keys must be strings, got 1; quote it"),
    ("a: *nowhere\n", "compose.yaml:1:4: invalid YAML: found undefined alias 'nowhere'"),
])
def test_located_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_text(text, Path("compose.yaml"), "compose.yaml")
    assert str(err.value) == message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"^nope.yaml: no such file$"):
        parse_file(tmp_path / "nope.yaml", "nope.yaml")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"^dir: is a directory, not a stack file$"):
        parse_file(tmp_path, "dir")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\x7fELF\x00\x01")
    with pytest.raises(SpecError, match=r"^c.yaml: binary file, not a YAML stack file$"):
        parse_file(path, "c.yaml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"services:\n  w\xe9b: {}\n")
    with pytest.raises(SpecError, match=r"^c.yaml:2:4: not UTF-8 text \(byte 0xe9\)$"):
        parse_file(path, "c.yaml")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xef\xbb\xbfname: x\n")
    assert parse_file(path, "c.yaml")[0].tree == {"name": "x"}


def test_a_leading_zero_integer_is_octal_as_compose_reads_it() -> None:
    """`mode: 0440` in every Compose example means 0o440 (Go's decoder reads base prefixes)."""
    tree = _parse("a: 0440\nb: 440\nc: '0440'\nd: 0\n")
    assert (tree["a"], tree["b"], tree["c"], tree["d"]) == (0o440, 440, "0440", 0)
