"""`.dockerignore` as Docker reads and matches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.build.ignore import IgnoreMatcher
from stackup.errors import DockerfileError


def _m(*lines: str) -> IgnoreMatcher:
    return IgnoreMatcher.from_lines(lines)


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),  # `*` stays in one element
        ("**/*.md", "docs/deep/README.md", True),
        ("**/*.md", "README.md", True),
        ("docs", "docs/a/b.txt", True),  # a directory pattern covers what is under it
        ("docs/*", "docs/a/b.txt", True),
        ("/docs", "docs", True),  # leading slash dropped
        ("./docs", "docs/x", True),  # ./ cleaned away
        ("docs/../build", "build/out", True),  # filepath.Clean
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("a[b-d]e", "ace", True),
        ("a[^b-d]e", "aze", True),
        ("abc/**", "abc", False),
        ("abc/**", "abc/def", True),
        ("node_modules", "node_modules", True),
        ("node_modules", "src/node_modules", False),
        ("**/node_modules", "src/node_modules/x.js", True),
        ("a\\*b", "a*b", True),
        ("  spaced.txt  ", "spaced.txt", True),
        ("*", "anything", True),
    ],
)
def test_single_pattern(pattern: str, path: str, ignored: bool) -> None:
    assert _m(pattern).matches(path) is ignored


def test_order_matters_and_exceptions_reinclude() -> None:
    m = _m("*.md", "!README.md")
    assert m.matches("CHANGES.md")
    assert not m.matches("README.md")
    m2 = _m("!README.md", "*.md")
    assert m2.matches("README.md")


def test_exception_inside_excluded_directory() -> None:
    m = _m("build", "!build/keep")
    assert m.matches("build/tmp/x")
    assert not m.matches("build/keep")
    assert not m.matches("build/keep/nested/file")
    assert m.has_exclusions


def test_comments_and_blank_lines() -> None:
    m = IgnoreMatcher.from_lines(["# a comment", "", "   ", " # not a comment (not in column 1)", "x"])
    assert [p.pattern for p in m.patterns] == ["# not a comment (not in column 1)", "x"]
    assert [p.line for p in m.patterns] == [4, 5]


def test_explain_names_the_deciding_pattern(tmp_path: Path) -> None:
    f = tmp_path / ".dockerignore"
    f.write_text("*.log\nlogs\n!logs/keep.log\n")
    m = IgnoreMatcher.from_file(f)
    d = m.explain("logs/keep.log")
    assert not d.ignored
    assert d.pattern is not None and d.pattern.line == 3 and d.pattern.exclusion
    d2 = m.explain("logs/other.txt")
    assert d2.ignored and d2.pattern is not None and d2.pattern.text == "logs"
    assert str(d2) == f"logs/other.txt: ignored by 'logs' ({f}:2)"
    assert m.explain("src/main.py").pattern is None
    assert "no pattern" in str(m.explain("src/main.py"))


def test_evaluate_agrees_with_matches_while_walking() -> None:
    m = _m("a", "!a/b", "**/*.tmp", "!keep.tmp")
    paths = ["a", "a/b", "a/b/c", "a/c", "x.tmp", "keep.tmp", "d/keep.tmp", "d/e.tmp", "d"]
    for path in paths:
        bits = None
        parts = path.split("/")
        for i in range(1, len(parts)):
            _, bits = m.evaluate("/".join(parts[:i]), bits)
        assert m.evaluate(path, bits)[0] is m.matches(path), path


@pytest.mark.parametrize("bad", ["!", "[a", "a\\", "[]a]", "[z-a]"])
def test_malformed_patterns_are_located_errors(bad: str) -> None:
    with pytest.raises(DockerfileError) as info:
        IgnoreMatcher.from_lines(["ok", bad], source="ctx/.dockerignore")
    assert info.value.path == "ctx/.dockerignore"
    assert info.value.line == 2


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("a\n")
    sub = tmp_path / "docker"
    sub.mkdir()
    (sub / "app.Dockerfile").write_text("FROM scratch\n")
    (sub / "app.Dockerfile.dockerignore").write_text("b\n")
    specific = IgnoreMatcher.for_context(tmp_path, sub / "app.Dockerfile")
    assert specific.matches("b") and not specific.matches("a")
    generic = IgnoreMatcher.for_context(tmp_path, tmp_path / "Dockerfile")
    assert generic.matches("a") and not generic.matches("b")
    assert not IgnoreMatcher.for_context(tmp_path / "docker")  # no file: no patterns


def test_bom_and_crlf() -> None:
    m = IgnoreMatcher.from_lines(["\ufeff*.o\r", "dist\r"])
    assert m.matches("x.o") and m.matches("dist/a")
