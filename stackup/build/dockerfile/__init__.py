"""The Dockerfile language as BuildKit parses it: text -> `ParseResult` (nodes, BuildKit's test
notation) -> typed instructions. Substitution lives in `shell` (the lexer) and is applied by the
build graph, which knows which variables are in scope."""

from __future__ import annotations

from stackup.build.dockerfile.ast import Directive, Heredoc, Node, ParseResult, Warning
from stackup.build.dockerfile.convert import Dockerfile, parse_instructions, to_instruction
from stackup.build.dockerfile.parser import parse_file, parse_text

__all__ = [
    "Directive",
    "Dockerfile",
    "Heredoc",
    "Node",
    "ParseResult",
    "Warning",
    "parse_file",
    "parse_instructions",
    "parse_text",
    "to_instruction",
]
