"""Property tests: whatever the text, the parser and lexer fail only with their own errors, and a
parse is stable under re-rendering."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackup.build.dockerfile import parse_instructions, parse_text
from stackup.build.dockerfile.shell import ShellError, ShellLexer
from stackup.build.graph import plan_build
from stackup.build.ignore import IgnoreMatcher
from stackup.build.platform import Platform
from stackup.errors import DockerfileError

KEYWORDS = ["FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "LABEL", "CMD", "ENTRYPOINT", "WORKDIR", "USER",
            "EXPOSE", "VOLUME", "SHELL", "HEALTHCHECK", "ONBUILD", "STOPSIGNAL", "MAINTAINER", "from",
            "BOGUS"]
PIECES = ["\\", "`", "$", "${", "}", ":-", ":+", ":?", "'", '"', "[", "]", ",", "<<", "<<-", "EOF", "\n",
          "\t", " ", "=", "--", "--from=a", "--mount=type=cache,target=/c", "--chmod=7", "#", "# escape=`",
          "a", "b/c", "*", "\r", "\u00e9", "\u2028", "\x00", "AS", "x y"]

line = st.builds(lambda k, rest: k + " " + "".join(rest), st.sampled_from(KEYWORDS),
                 st.lists(st.sampled_from(PIECES), max_size=12))
dockerfile = st.lists(st.one_of(line, st.text(max_size=30)), min_size=0, max_size=8).map("\n".join)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(dockerfile)
def test_parser_fails_only_with_dockerfile_error(text: str) -> None:
    try:
        result = parse_text(text)
        df = parse_instructions(result)
        if df.stages:
            graph = plan_build(df, build_platform=Platform())
            graph.levels()
    except DockerfileError as exc:
        assert exc.line >= 0
        return
    assert result.dump().count("\n") == len(result.nodes)


@FAST
@given(st.lists(st.sampled_from([*PIECES, "PWD", "x", "#", "%", "/", "//", "?"]), max_size=20).map("".join),
       st.sampled_from(["\\", "`"]))
def test_lexer_fails_only_with_shell_error(word: str, escape: str) -> None:
    env = {"PWD": "/home", "x": "a b", "EMPTY": ""}
    for lexer in (ShellLexer(escape), ShellLexer(escape, raw_quotes=True, raw_escapes=True, skip_unset=True),
                  ShellLexer(skip_quotes=True)):
        try:
            lexer.process_word(word, env)
            lexer.process_words(word, env)
        except ShellError:
            pass


@FAST
@given(st.lists(st.text(alphabet="ab*?![]^\\/.-# \n", max_size=8), max_size=6),
       st.text(alphabet="ab/.", min_size=1, max_size=10))
def test_ignore_fails_only_with_dockerfile_error(lines: list[str], path: str) -> None:
    try:
        matcher = IgnoreMatcher.from_lines(lines)
    except DockerfileError:
        return
    assert matcher.matches(path) in (True, False)
    assert matcher.explain(path).ignored is matcher.matches(path)
