"""The line scanner: directives, continuations, heredocs, locations, errors."""

from __future__ import annotations

import pytest

from stackup.build.dockerfile import parse_text
from stackup.errors import DockerfileError


def dump(text: str) -> str:
    return parse_text(text).dump()


def test_locations_and_original_text() -> None:
    r = parse_text("# c\nFROM a\n\n  RUN echo \\\n  hi\nCMD x\n")
    run = r.nodes[1]
    assert (run.line, run.end_line, run.column) == (4, 5, 3)
    assert run.original == "RUN echo   hi"
    assert run.source == "  RUN echo \\\n  hi\n"
    assert r.nodes[2].line == 6


def test_escape_directive_backtick() -> None:
    r = parse_text("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n")
    assert r.escape == "`"
    assert r.nodes[1].args == ("dir c:\\   && echo",)
    assert r.directive("escape") == "`"


def test_directives_stop_at_first_other_line() -> None:
    r = parse_text("FROM a\n# escape=`\nRUN a \\\n b\n")
    assert r.escape == "\\"
    assert r.nodes[1].args == ("a  b",)


def test_syntax_directive_is_recorded_with_a_note_and_check_ignored() -> None:
    r = parse_text("# syntax=docker/dockerfile:1.7\n# check=skip=all\nFROM a\n")
    assert r.directive("syntax") == "docker/dockerfile:1.7"
    assert r.directive("check") == "skip=all"
    assert any("syntax directive" in w.message for w in r.warnings)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("# escape=x\nFROM a\n", 1, "invalid escape token"),
        ("# escape=\\\n# escape=`\nFROM a\n", 2, "only one escape parser directive"),
        ("FROM a\nENV X\n", 2, "ENV must have two arguments"),
        ("FROM a\nLABEL a=b c\n", 2, "can't find = in \"c\""),
        ("FROM a\nRUN <<EOF\nno end\n", 2, "unterminated heredoc"),
        ("FROM a\nCMD [1, 2]\n", 2, "arrays must be comprised of strings only"),
        ("\n\n# only\n", 3, "file with no instructions"),
    ],
)
def test_errors_are_located(text: str, line: int, message: str) -> None:
    with pytest.raises(DockerfileError, match=message) as info:
        parse_text(text, path="ctx/Dockerfile")
    assert info.value.line == line
    assert str(info.value).startswith(f"ctx/Dockerfile:{line}:")


def test_continuation_skips_comments_and_warns_on_empty_lines() -> None:
    r = parse_text("FROM a\nRUN a \\\n# comment\n\n  b\n")
    assert r.nodes[1].args == ("a   b",)
    assert any("Empty continuation" in w.message for w in r.warnings)


def test_heredocs() -> None:
    text = (
        "FROM a\n"
        "RUN <<EOF\necho $HOME\nEOF\n"
        "RUN <<-'END' cat > /x\n\tkeep $X\n\tEND\n"
        "COPY <<one <<two /dest/\nfirst\none\nsecond\ntwo\n"
        'RUN ["echo", "<<NOT"]\n'
    )
    r = parse_text(text)
    run1, run2, copy, exec_form = r.nodes[1:]
    assert run1.heredocs[0].name == "EOF" and run1.heredocs[0].expand and not run1.heredocs[0].chomp
    assert run1.heredocs[0].content == "echo $HOME\n"
    doc = run2.heredocs[0]
    assert (doc.name, doc.expand, doc.chomp) == ("END", False, True)
    assert doc.content == "\tkeep $X\n" and doc.body() == "keep $X\n"
    assert [d.content for d in copy.heredocs] == ["first\n", "second\n"]
    assert exec_form.heredocs == () and exec_form.json
    assert (run2.line, run2.end_line) == (5, 7)


def test_heredoc_with_fd_and_spaces() -> None:
    r = parse_text('FROM a\nRUN 3<< "E O" cat\nx\nE O\n')
    doc = r.nodes[1].heredocs[0]
    assert (doc.fd, doc.name, doc.expand) == (3, "E O", False)


def test_flags_and_dump_notation() -> None:
    assert dump("FROM a\nCOPY --chown='a b' --link -- --weird /d\n") == (
        '(from "a")\n(copy ["--chown=a b" "--link"] "--weird" "/d")\n'
    )
    assert dump("FROM a\nONBUILD RUN echo\nHEALTHCHECK NONE\nfoo bar\n") == (
        '(from "a")\n(onbuild (run "echo"))\n(healthcheck "NONE")\n(foo "")\n'
    )


def test_bom_crlf_and_go_quoting() -> None:
    assert dump('\ufeffFROM a\r\nRUN echo "\x01"\r\n') == '(from "a")\n(run "echo \\"\\x01\\"")\n'


def test_invalid_utf8_survives() -> None:
    r = parse_text(b"FROM a\nRUN echo \xff\n".decode("utf-8", "surrogateescape"))
    assert r.nodes[1].dump() == 'run "echo \\xff"'


def test_line_too_long() -> None:
    with pytest.raises(DockerfileError, match="max allowed size"):
        parse_text("FROM a\nRUN " + "x" * 70000 + "\n")
