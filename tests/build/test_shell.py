"""BuildKit's shell lexer: substitution forms, quoting, escapes, word splitting."""

from __future__ import annotations

import pytest

from stackup.build.dockerfile.shell import ShellError, ShellLexer

ENV = {"PWD": "/home", "EMPTY": "", "SPACE": "a  b", "LEAD": "  x y", "K": "한국어", "V": "a/b/c.tar.gz"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("hello", "hello"),
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ('"abc\\tdef"', "abc\\tdef"),
        ("'abc\\tdef'", "abc\\tdef"),
        ("abc\\tdef", "abctdef"),
        ("hello\\", "hello"),
        ("hello\\\\", "hello\\"),
        ("$PWD", "/home"),
        ("${PWD}", "/home"),
        ("he\\$PWD", "he$PWD"),
        ('"he\\$PWD"', "he$PWD"),
        ("'$PWD'", "$PWD"),
        ("$.", "$."),
        ("he$1x", "hex"),
        ("${UNSET:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${PWD:-def}", "/home"),
        ("${UNSET:+alt}", ""),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${PWD:+alt}", "alt"),
        ("${PWD?}", "/home"),
        ("${UNSET:-${PWD}x}", "/homex"),
        ("${UNSET:-'q u'}", "q u"),
        ("$K", "한국어"),
        ("${V#*/}", "b/c.tar.gz"),
        ("${V##*/}", "c.tar.gz"),
        ("${V%.*}", "a/b/c.tar"),
        ("${V%%.*}", "a/b/c"),
        ("${V/b/X}", "a/X/c.tar.gz"),
        ("${V//\\//-}", "a-b-c.tar.gz"),
        ('"${SPACE}"', "a  b"),
    ],
)
def test_process_word(word: str, expected: str) -> None:
    assert ShellLexer().process_word(word, ENV).result == expected


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${UNSET:?must be set}", "UNSET: must be set"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${PWD", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:x}", "bad substitution"),
        ("'open", "matching single-quote"),
        ('"open', "matching double-quote"),
        ("${PWD:#x}", "unsupported modifier"),
        ("${PWD!}", "unsupported modifier"),
    ],
)
def test_errors(word: str, message: str) -> None:
    with pytest.raises(ShellError, match=message):
        ShellLexer().process_word(word, ENV)


def test_matched_and_unmatched_names() -> None:
    e = ShellLexer().process_word("$PWD ${NOPE:-x} $EMPTY", ENV)
    assert e.matched == {"PWD", "EMPTY"}
    assert e.unmatched == {"NOPE"}


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("a b  c", ["a", "b", "c"]),
        ("a${SPACE}b", ["aa", "bb"]),
        ('a"${SPACE}"b', ["aa  bb"]),
        ("${LEAD}", ["x", "y"]),
        ("'a b' c", ["a b", "c"]),
        ("a\\ b", ["a b"]),
        ('"" a', ["a"]),
        ("ab${UNSET:-c}d", ["abcd"]),
    ],
)
def test_process_words(word: str, words: list[str]) -> None:
    assert ShellLexer().process_words(word, ENV) == words


def test_backtick_escape() -> None:
    lex = ShellLexer("`")
    assert lex.process_word("a`$PWD", ENV).result == "a$PWD"
    assert lex.process_word("C:\\dir", ENV).result == "C:\\dir"


def test_modes() -> None:
    keep = ShellLexer(raw_quotes=True, skip_unset=True)
    assert keep.process_word("'a' \"$NOPE\" ${NOPE:-x}", {}).result == "'a' \"$NOPE\" ${NOPE:-x}"
    raw = ShellLexer(skip_quotes=True)
    assert raw.process_word("it's \"$PWD\"", ENV).result == "it's \"/home\""
