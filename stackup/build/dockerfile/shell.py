"""Variable substitution and word splitting as BuildKit's shell lexer does them.

Not a shell: only what the Dockerfile reference promises (`$var`, `${var}`, `${var:-d}`, `${var-d}`,
`${var:+a}`, `${var+a}`, `${var:?err}`, `${var?err}`, the `#`/`%` trims and `/` replacements BuildKit
added), quotes, and the escape token. Words split on Unicode space outside quotes, and text that came
from a variable splits too (as EXPOSE needs: `EXPOSE $PORTS`).

The knobs mirror BuildKit's, because it runs the lexer in several modes: `raw_quotes` keeps quote
characters (heredoc detection, RUN's display name), `raw_escapes` keeps escape tokens, `skip_unset`
leaves unknown variables as written, `skip_quotes` treats quotes as plain text (heredoc bodies).

One deliberate difference: BuildKit (since 2024) reuses one word buffer across nested `${...}`
lexing, so `ab${x:-c}d` splits into `cd`; here it is `abcd`, as in every earlier release and sh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stackup.build.dockerfile.gotext import is_space
from stackup.build.dockerfile.shellpattern import (
    ShellError,
    go_template,
    pattern_regex,
    trim_prefix,
    trim_suffix,
)

__all__ = ["Expansion", "ShellError", "ShellLexer"]

_EOF = ""
_SPECIAL = frozenset("@*#?-$!0")


@dataclass(frozen=True)
class Expansion:
    """The result of `process_word`, with the variables it looked up (found and not found): the
    cache key uses the found ones, and a lint can name the unknown ones."""

    result: str
    matched: frozenset[str] = frozenset()
    unmatched: frozenset[str] = frozenset()


@dataclass
class _Words:
    words: list[str] = field(default_factory=list)
    buf: str = ""
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if is_space(ch):
            if self.in_word and self.buf:
                self.words.append(self.buf)
                self.buf = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.buf += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def get(self) -> list[str]:
        if self.buf:
            self.words.append(self.buf)
            self.buf = ""
            self.in_word = False
        return self.words


class ShellLexer:
    """A lexer configured once (escape token and modes), reusable for many words."""

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset: bool = False,
        skip_quotes: bool = False,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self.skip_quotes = skip_quotes

    def process_word(self, word: str, env: Mapping[str, str]) -> Expansion:
        """Expand `word` to one string (quotes removed, escapes applied)."""
        run = _Run(self, word, env)
        result, _ = run.top()
        return Expansion(result, frozenset(run.matched), frozenset(run.unmatched))

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand `word` and split it into words."""
        _, words = _Run(self, word, env).top()
        return words


class _Run:
    def __init__(self, lex: ShellLexer, text: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def top(self) -> tuple[str, list[str]]:
        try:
            return self.stop_on(_EOF, self.raw_escapes)
        except ShellError as exc:
            raise ShellError(f"failed to process {_q(self.text)}: {exc}") from None

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        if self.pos >= len(self.text):
            return _EOF
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        quotes = not self.lex.skip_quotes
        while (ch := self.peek()) != _EOF:
            if stop != _EOF and ch == stop:
                self.next()
                return "".join(result), words.get()
            if ch == "$":
                tmp = self.dollar()
                result.append(tmp)
                words.add_string(tmp)
                continue
            if ch == "<":
                tmp = self.possible_heredoc()
            elif quotes and ch == "'":
                tmp = self.single_quote()
            elif quotes and ch == '"':
                tmp = self.double_quote()
            else:
                ch = self.next()
                if ch == self.lex.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch == _EOF:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
                continue
            result.append(tmp)
            words.add_raw(tmp)
        if stop != _EOF:
            raise ShellError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get()

    def single_quote(self) -> str:
        out: list[str] = []
        quote = self.next()
        if self.lex.raw_quotes:
            out.append(quote)
        while True:
            ch = self.next()
            if ch == _EOF:
                raise ShellError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        out: list[str] = []
        quote = self.next()
        if self.lex.raw_quotes:
            out.append(quote)
        while True:
            peek = self.peek()
            if peek == _EOF:
                raise ShellError("unexpected end of statement while looking for matching double-quote")
            if peek == '"':
                ch = self.next()
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if peek == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.lex.escape:
                if self.raw_escapes:
                    out.append(ch)
                nxt = self.peek()
                if nxt == _EOF:
                    continue
                if nxt in ('"', "$", self.lex.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while (ch := self.peek()) != _EOF:
            if not out and ch.isdecimal():
                while self.peek() != _EOF and self.peek().isdecimal():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.lookup(name)
            if not found and self.lex.skip_unset:
                return "$" + name
            return value
        self.next()
        peek = self.peek()
        if peek == _EOF:
            raise ShellError("syntax error: missing '}'")
        if peek in "{}:":
            raise ShellError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == _EOF:  # BuildKit says "unsupported modifier (\ufffd)"; the cause is clearer
            raise ShellError("syntax error: missing '}'")
        if ch == "}":
            value, found = self.lookup(name)
            if not found and self.lex.skip_unset:
                return "${" + name + "}"
            return value
        if ch == "/":
            return self.replace(name)
        chs = ch or "\ufffd"
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            chs += ch or "\ufffd"
        elif ch not in ("+", "-", "?", "#", "%") or ch == _EOF:
            raise ShellError(f"unsupported modifier ({chs}) in substitution")
        trim = ch in ("#", "%") and ch != _EOF
        if null_is_unset and trim:
            raise ShellError(f"unsupported modifier ({chs}) in substitution")
        word = self._nested("}", trim, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.lex.skip_unset and not found:
            return "${" + name + chs + word + "}"
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise ShellError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise ShellError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if trim:
            greedy = word.startswith(ch)
            if greedy:
                word = word[1:]
            if ch == "%":
                return trim_suffix(word, value, greedy)
            return trim_prefix(word, value, greedy)
        raise ShellError(f"unsupported modifier ({chs}) in substitution")

    def _nested(self, stop: str, raw: bool, eof_message: str) -> str:
        try:
            word, _ = self.stop_on(stop, raw)
        except ShellError:
            if self.peek() == _EOF:
                raise ShellError(eof_message) from None
            raise
        return word

    def replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self._nested("/", True, "syntax error: missing '/' in ${}")
        replacement = self._nested("}", True, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.lex.skip_unset and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            template = go_template(replacement)
            return regex.sub(lambda _m: template, value)
        m = regex.search(value)
        if m:
            value = value[: m.start()] + replacement + value[m.end() :]
        return value

    def possible_heredoc(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        space: list[str] = []
        while self.peek() in ("\t", "\r", " ") and self.peek() != _EOF:
            space.append(self.next())
        return "<<" + "".join(space)


def _q(text: str) -> str:
    from stackup.build.dockerfile.gotext import go_quote

    return go_quote(text)
