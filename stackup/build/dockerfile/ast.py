"""The parse tree of a Dockerfile: one `Node` per instruction, as BuildKit's parser produces it.

BuildKit's nodes are linked lists (`Next`, `Children`); here an instruction is one frozen record
with its arguments as a tuple, which is what every later pass wants. `Node.dump()` renders
BuildKit's test notation, the format of the shared parser fixtures and of
`stackup dockerfile parse`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stackup.build.dockerfile.gotext import go_quote, go_quote_list, trim_space

_LEADING_TABS = re.compile(r"(?m)^\t+")


@dataclass(frozen=True)
class Heredoc:
    """A here-document: `<<EOF` (`chomp` for `<<-EOF`, `expand` unless the name was quoted)."""

    name: str
    expand: bool
    chomp: bool
    fd: int = 0
    content: str = ""

    def body(self) -> str:
        """The content as the instruction sees it: leading tabs stripped for `<<-`."""
        return _LEADING_TABS.sub("", self.content) if self.chomp else self.content


@dataclass(frozen=True)
class Directive:
    """A parser directive (`# syntax=`, `# escape=`, `# check=`) and the line it was on."""

    name: str
    value: str
    line: int


@dataclass(frozen=True)
class Warning:
    """Something BuildKit accepts but warns about (an empty continuation line), or a directive
    stackup records and ignores (`# syntax=`: the frontend is always this builder)."""

    message: str
    line: int


@dataclass(frozen=True)
class Node:
    """One instruction as parsed: the keyword as written, flags, arguments, heredocs, location.

    `args` is BuildKit's `Next` chain (for HEALTHCHECK: the type then the command); `sub` is
    ONBUILD's trigger instruction; `json` says the arguments came from a JSON array (exec form).
    `original` is the logical line after continuation joining (what BuildKit keeps); `source` is
    the text as it stands in the file, from the first line to the heredoc terminators.
    """

    keyword: str
    args: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    json: bool = False
    sub: Node | None = None
    heredocs: tuple[Heredoc, ...] = ()
    original: str = ""
    source: str = ""
    line: int = 0
    end_line: int = 0
    column: int = 1

    @property
    def command(self) -> str:
        """The instruction name, lower case (`run`, `copy`, ...)."""
        return self.keyword.lower()

    def dump(self) -> str:
        """BuildKit's `Node.Dump()`: `run ["--mount=..."] "echo hi"` (without the parentheses)."""
        parts = [self.keyword.lower()]
        if self.flags:
            parts.append(go_quote_list(self.flags))
        if self.sub is not None:
            parts.append("(" + self.sub.dump() + ")")
        parts.extend(go_quote(a) for a in self.args)
        return trim_space(" ".join(parts))


@dataclass(frozen=True)
class ParseResult:
    """A parsed Dockerfile: instructions in order, the escape token, directives and warnings."""

    nodes: tuple[Node, ...]
    escape: str = "\\"
    directives: tuple[Directive, ...] = ()
    warnings: tuple[Warning, ...] = field(default=())
    path: str = "Dockerfile"

    def dump(self) -> str:
        """The whole file in BuildKit's test notation, one instruction a line."""
        return "".join(f"({n.dump()})\n" for n in self.nodes)

    def directive(self, name: str) -> str | None:
        for d in self.directives:
            if d.name == name:
                return d.value
        return None
