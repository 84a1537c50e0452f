"""Variable substitution per instruction, with BuildKit's table of what expands.

| instruction | substituted |
|---|---|
| FROM | image and `--platform`, with the global scope (ARGs before the first FROM) |
| ENV, LABEL | keys and values (all pairs see the variables from before the instruction) |
| ARG | the default value (the name never) |
| COPY, ADD | sources, destination, `--chown`, `--chmod`; unquoted heredoc bodies (quotes kept) |
| WORKDIR, USER, STOPSIGNAL | the argument |
| VOLUME | each path |
| EXPOSE | each argument, split into words (`EXPOSE $PORTS`) |
| RUN | `--mount` values except `from` (the command is the shell's business) |
| CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER | nothing |

`COPY --from` and `--mount from=` are never substituted (BuildKit refuses variables there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TypeVar

from stackup.build.chmod import ModeError, parse_chmod
from stackup.build.dockerfile.convert import refuse_remote
from stackup.build.dockerfile.instructions import (
    Add,
    CopyBase,
    Env,
    Expose,
    InlineSource,
    Instruction,
    KeyValue,
    Label,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from stackup.build.dockerfile.shell import ShellError, ShellLexer
from stackup.errors import DockerfileError

T = TypeVar("T", bound=Instruction)


class Expander:
    """Substitutes words of one instruction against one environment, remembering which variables
    it found (the cache key includes the build args among them)."""

    def __init__(self, lexer: ShellLexer, env: Mapping[str, str], path: str, instr: Instruction) -> None:
        self.lexer = lexer
        self.env = env
        self.path = path
        self.instr = instr
        self.used: set[str] = set()

    def fail(self, message: str) -> DockerfileError:
        return DockerfileError(message, path=self.path, line=self.instr.line, column=self.instr.column)

    def word(self, text: str) -> str:
        try:
            result = self.lexer.process_word(text, self.env)
        except ShellError as exc:
            raise self.fail(str(exc)) from None
        self.used |= result.matched
        return result.result

    def words(self, text: str) -> list[str]:
        try:
            expansion = self.lexer.process_word(text, self.env)
            self.used |= expansion.matched
            return self.lexer.process_words(text, self.env)
        except ShellError as exc:
            raise self.fail(str(exc)) from None

    def raw(self, text: str) -> str:
        """Heredoc bodies: variables only, quotes and the backtick escape left alone."""
        try:
            result = ShellLexer("\\", skip_quotes=True).process_word(text, self.env)
        except ShellError as exc:
            raise self.fail(str(exc)) from None
        self.used |= result.matched
        return result.result


def expand_instruction(
    instr: T, env: Mapping[str, str], lexer: ShellLexer, path: str = "Dockerfile"
) -> tuple[T, frozenset[str]]:
    """The instruction with its substitutable words substituted, and the variables used."""
    ex = Expander(lexer, env, path, instr)
    out: Instruction = instr
    if isinstance(instr, Env | Label):
        pairs = tuple(KeyValue(ex.word(p.key), ex.word(p.value), p.legacy) for p in instr.pairs)
        out = replace(instr, pairs=pairs)
    elif isinstance(instr, CopyBase):
        out = _expand_copy(instr, ex)
    elif isinstance(instr, Workdir):
        out = replace(instr, path=ex.word(instr.path))
    elif isinstance(instr, User):
        out = replace(instr, user=ex.word(instr.user))
    elif isinstance(instr, StopSignal):
        out = replace(instr, signal=ex.word(instr.signal))
    elif isinstance(instr, Volume):
        out = replace(instr, paths=tuple(ex.word(p) for p in instr.paths))
    elif isinstance(instr, Expose):
        out = replace(instr, ports=tuple(w for p in instr.ports for w in ex.words(p)))
    return out, frozenset(ex.used)  # type: ignore[return-value]


def _expand_copy(instr: CopyBase, ex: Expander) -> CopyBase:
    sources = tuple(ex.word(s) for s in instr.sources)
    if isinstance(instr, Add):
        for src in sources:
            try:
                refuse_remote(src)
            except ValueError as exc:
                raise ex.fail(str(exc)) from None
    inline = tuple(
        InlineSource(i.name, ex.raw(i.data) if i.expand else i.data, i.expand) for i in instr.inline
    )
    out = replace(instr, sources=sources, dest=ex.word(instr.dest), chown=ex.word(instr.chown),
                  chmod=ex.word(instr.chmod), inline=inline)
    if out.chmod:
        try:
            parse_chmod(out.chmod)
        except ModeError as exc:
            raise ex.fail(str(exc)) from None
    return out
