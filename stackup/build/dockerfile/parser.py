"""Dockerfile text -> `ParseResult`, line by line as BuildKit's parser reads it.

The rules, in BuildKit's order: parser directives are `# key=value` comments before anything else
(`escape` changes the escape token, `syntax` is recorded with a note since this builder is the only
frontend, `check` is ignored); a line whose last non-blank character is the escape token
continues on the next line; inside a continuation, comment lines and empty lines are skipped
(empty ones with a warning, as BuildKit does); RUN/COPY/ADD lines that name here-documents
(`<<EOF`, `<<-EOF`, `<<"EOF"`, several per line) swallow the following lines up to each
terminator. A file without instructions is refused.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from stackup.build.dockerfile.ast import Directive, Heredoc, Node, ParseResult, Warning
from stackup.build.dockerfile.gotext import trim_left_space
from stackup.build.dockerfile.lineparse import LineError, node_from_line
from stackup.build.dockerfile.shell import ShellError, ShellLexer
from stackup.errors import DockerfileError

MAX_LINE_BYTES = 64 * 1024
"""bufio.Scanner's token limit, which BuildKit inherits (a longer line is an error there)."""

_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_DIRECTIVE_NAMES = frozenset({"syntax", "escape", "check"})


class _Directives:
    """The `# key=value` lines at the top; done at the first line that is not one."""

    def __init__(self) -> None:
        self.escape = "\\"
        self._continuation = self._regex("\\")
        self.done = False
        self.found: list[Directive] = []

    @staticmethod
    def _regex(escape: str) -> re.Pattern[str]:
        e = re.escape(escape)
        return re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")

    def feed(self, line: str, number: int) -> None:
        if self.done:
            return
        if not line.startswith("#"):
            self.done = True
            return
        m = _DIRECTIVE.match(trim_left_space(line[1:]))
        if m is None or m.group(1).lower() not in _DIRECTIVE_NAMES:
            self.done = True
            return
        name, value = m.group(1).lower(), m.group(2)
        if any(d.name == name for d in self.found):
            raise LineError(f"only one {name} parser directive can be used")
        if name == "escape":
            if value not in ("`", "\\"):
                raise LineError(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self._continuation = self._regex(value)
        self.found.append(Directive(name, value, number))

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """The line without its continuation mark, and whether the instruction ends here."""
        if self._continuation.search(line):
            return self._continuation.sub(r"\1", line, count=1), False
        return line, True


def _is_comment(line: str) -> bool:
    return trim_left_space(line).startswith("#")


def _split_lines(text: str) -> list[str]:
    """Lines with their newline, as BuildKit's scanner yields them (no empty last line)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def parse_text(text: str, path: str = "Dockerfile") -> ParseResult:
    """Parse Dockerfile text. Raises `DockerfileError` located at `path:line:column`."""
    d = _Directives()
    lines = _split_lines(text)
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    nodes: list[Node] = []
    warnings: list[Warning] = []
    i = 0
    current = 0

    def fail(message: str, line: int, column: int = 1) -> DockerfileError:
        return DockerfileError(message, path=path, line=line, column=column)

    def process(raw: str, strip_left: bool, number: int) -> str:
        if len(raw) * 4 > MAX_LINE_BYTES and len(raw.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES:
            raise fail(f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES - 1}", number)
        token = raw.rstrip("\r\n")
        if strip_left:
            token = trim_left_space(token)
        try:
            d.feed(token, number)
        except LineError as exc:
            raise fail(str(exc), number) from None
        return "" if _is_comment(token) else token

    while i < len(lines):
        raw = lines[i]
        i += 1
        token = process(raw, True, current + 1)
        current += 1
        start = current
        stripped = raw.rstrip("\r\n")
        column = 1 + len(stripped) - len(trim_left_space(stripped))
        token, end = d.trim_continuation(token)
        if end and token == "":
            continue
        parts = [token]
        empty_continuation = False
        while not end and i < len(lines):
            raw_next = lines[i]
            i += 1
            piece = process(raw_next, False, current + 1)
            current += 1
            if _is_comment(raw_next):
                continue
            if trim_left_space(piece) == "":
                empty_continuation = True
                continue
            piece, end = d.trim_continuation(piece)
            parts.append(piece)
        logical = "".join(parts)
        if empty_continuation:
            warnings.append(Warning(f"Empty continuation line found in: {logical}", current))
        try:
            node = node_from_line(logical, d.escape)
        except LineError as exc:
            raise fail(str(exc), start, column) from None
        heredocs: list[Heredoc] = []
        if _can_contain_heredoc(node) and "<<" in logical:
            try:
                found = heredocs_from_line(logical)
            except ShellError as exc:
                raise fail(str(exc), start, column) from None
            for doc in found:
                content: list[str] = []
                terminated = False
                while i < len(lines):
                    body_line = lines[i]
                    i += 1
                    current += 1
                    candidate = body_line.rstrip("\r\n")
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        terminated = True
                        break
                    content.append(body_line)
                if not terminated:
                    raise fail("unterminated heredoc", start, column)
                heredocs.append(replace(doc, content="".join(content)))
        source = "".join(lines[start - 1 : current])
        located = replace(node, source=source, line=start, end_line=current, column=column)
        nodes.append(replace(located, heredocs=tuple(heredocs)))
    if not nodes:
        raise fail("file with no instructions", max(current, 1))
    for directive in d.found:
        if directive.name == "syntax":
            warnings.append(
                Warning(f"the syntax directive ({directive.value}) is ignored: stackup's builder is the "
                        "frontend", directive.line)
            )
    return ParseResult(
        nodes=tuple(nodes), escape=d.escape, directives=tuple(d.found), warnings=tuple(warnings), path=path
    )


def parse_file(path: str | Path) -> ParseResult:
    """Read and parse a Dockerfile (bytes that are not UTF-8 survive as surrogate escapes)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DockerfileError(f"cannot read the Dockerfile: {exc.strerror}", path=str(p)) from None
    return parse_text(data.decode("utf-8", "surrogateescape"), path=str(p))


def _can_contain_heredoc(node: Node) -> bool:
    target = node.sub if node.command == "onbuild" and node.sub is not None else node
    return target.command in ("add", "copy", "run") and not target.json


def parse_heredoc(word: str) -> Heredoc | None:
    """`<<EOF`, `<<-EOF`, `2<<"EOF"` as a heredoc (name unquoted); None if `word` is not one."""
    m = _HEREDOC.match(word)
    if m is None or not m.group(3):
        return None
    rest = m.group(3)
    words = ShellLexer("\\", skip_unset=True).process_words(rest, {})
    if len(words) != 1:
        return None
    raw = ShellLexer("\\", skip_unset=True, raw_quotes=True).process_words(rest, {})
    if len(raw) != 1:
        raise ShellError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    word0, raw0 = words[0], raw[0]
    expand = word0.count("'") + word0.count('"') == raw0.count("'") + raw0.count('"')
    fd = min(int(m.group(1)), 2**64 - 1) if m.group(1) else 0
    return Heredoc(name=word0, expand=expand, chomp=m.group(2) == "-", fd=fd)


def heredocs_from_line(line: str) -> list[Heredoc]:
    """Every heredoc a line names, in order (a line the lexer cannot read names none)."""
    lexer = ShellLexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True)
    try:
        words = lexer.process_words(line, {})
    except ShellError:
        return []
    out: list[Heredoc] = []
    for word in words:
        doc = parse_heredoc(word)
        if doc is not None:
            out.append(doc)
    return out
