"""`.env` files with Compose's rules (compose-go `dotenv/`, itself derived from joho/godotenv).

A `.env` that works with Docker Compose must give the same variables here, so this parser walks
the text the way compose-go's does, including its leniencies: `KEY: value` works like
`KEY=value`, an unquoted value ends at ` #`, text after a closing quote starts a new statement,
and `${VAR}` in a value sees the caller's environment *before* keys set earlier in the file
(compose-go's precedence, so `OPTION_A=1` then `B=${OPTION_A}` gives the shell's `OPTION_A`).

Two deliberate differences: a bare `KEY` on the last line without a newline is inherited like
any other bare `KEY` (compose-go turns it into a variable with an empty name), and a file that
is not UTF-8 text is rejected instead of being read as bytes. Errors point at `file:line:col`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

from stackup.spec.errors import Location, Problem, SpecError
from stackup.spec.interpolate import InterpolationError, Lookup, OnMissing, substitute

# Go's `\s` is ASCII only; Python's would also swallow Unicode spaces.
_EXPORT = re.compile(r"export[\t\n\f\r ]+")
# Escapes expanded in double quotes: C-style ones, `\$` and XSI-echo octal `\0ddd`.
_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-9]{0,3})")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   '"': '"', "\\": "\\", "$": "$$"}
# compose-go's isSpace: blanks that are not line breaks.
_BLANK = frozenset("\t\v\f\r \x85\xa0")
_KEY_PUNCTUATION = frozenset("_.-[]")
_QUOTES = frozenset("'\"")


def _no_lookup(_name: str) -> str | None:
    return None


def parse_dotenv(text: str, *, filename: str = "<env>", lookup: Lookup = _no_lookup,
                 on_missing: OnMissing | None = None) -> dict[str, str]:
    """The variables `text` defines, in file order.

    `lookup` is the environment the file is read in: it answers bare `KEY` lines and takes
    precedence over the file's own earlier keys inside `${...}`. Raises `SpecError` listing the
    bad lines (Compose stops at the first; the variables of a good file are the same).
    """
    out: dict[str, str] = {}
    _Parser(text, filename, lookup, on_missing).parse_into(out)
    return out


def read_dotenv(path: Path, lookup: Lookup = _no_lookup, *,
                on_missing: OnMissing | None = None) -> dict[str, str]:
    """`parse_dotenv` on a file, turning every way of not being a readable text file into SpecError."""
    return parse_dotenv(_read_text(path), filename=str(path), lookup=lookup, on_missing=on_missing)


def load_env_files(paths: Sequence[Path], base_env: Mapping[str, str], *,
                   on_missing: OnMissing | None = None) -> dict[str, str]:
    """Variables from several env files (`--env-file a --env-file b`), later files winning.

    As compose-go's GetEnvFromFile: `base_env` (the shell) comes first inside `${...}`, then
    whatever the files have set so far, including keys set earlier by the same file. Only the
    files' variables are returned, not `base_env`.
    """
    env: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        return base_env[name] if name in base_env else env.get(name)

    problems: list[Problem] = []
    for path in paths:
        try:
            _Parser(_read_text(path), str(path), lookup, on_missing).parse_into(env)
        except SpecError as err:
            problems.extend(err.problems)
    if problems:
        raise SpecError(problems)
    return env


MAX_ENV_FILE_BYTES = 16 * 2**20
"""An env file larger than this is refused (the same bound as stack files)."""


def _read_text(path: Path) -> str:
    def fail(message: str) -> SpecError:
        return SpecError([Problem(message, location=Location(str(path)))])

    try:
        with path.open("rb") as handle:  # bounded: `--env-file /dev/zero` must not read forever
            data = handle.read(MAX_ENV_FILE_BYTES + 1)
    except FileNotFoundError:
        raise fail(f"env file {path} not found") from None
    except IsADirectoryError:
        raise fail(f"env file {path} is a directory, not a file") from None
    except OSError as err:
        raise fail(f"cannot read env file {path}: {err.strerror or err}") from None
    if len(data) > MAX_ENV_FILE_BYTES:
        raise fail(f"env file {path} is larger than {MAX_ENV_FILE_BYTES // 2**20} MiB, the limit "
                   "for env files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise fail(f"env file {path} is not UTF-8 text (invalid byte at offset {err.start}); "
                   "is it a binary file?") from None
    if "\x00" in text:
        raise fail(f"env file {path} contains NUL bytes; is it a binary file?")
    return text


class _Unterminated(SpecError):
    """An unterminated quote: the rest of the file is its value, so parsing cannot go on."""


class _Parser:
    """One pass over one file; `pos` only moves forward, so errors can be located by offset."""

    def __init__(self, text: str, filename: str, lookup: Lookup, on_missing: OnMissing | None) -> None:
        self.text = text.removeprefix("\ufeff")
        self.filename = filename
        self.lookup = lookup
        self.on_missing = on_missing

    def parse_into(self, out: dict[str, str]) -> None:
        """Every bad line is reported, not only the first (a user fixes them all in one round):
        a bad key or a failed substitution ends its own line only; an unterminated quote takes
        the rest of the file with it, so nothing after it can be judged."""
        problems: list[Problem] = []
        pos = self._statement_start(0)
        while pos < len(self.text):
            try:
                key, pos, inherited = self._key(pos)
                if inherited:
                    found = self.lookup(key)
                    if found is not None:
                        out[key] = found
                else:
                    value, pos = self._value(pos, out, problems)
                    out[key] = value
            except _Unterminated as err:
                problems.extend(err.problems)
                break
            except SpecError as err:
                problems.extend(err.problems)
                end = self.text.find("\n", pos)
                pos = len(self.text) if end < 0 else end
            pos = self._statement_start(pos)
        if problems:
            raise SpecError(problems)

    def _statement_start(self, pos: int) -> int:
        """Skip blank space and `#` comment lines; `len(text)` at the end of the file."""
        text = self.text
        while pos < len(text):
            if _is_space(text[pos]):
                pos += 1
            elif text[pos] == "#":
                end = text.find("\n", pos)
                pos = len(text) if end < 0 else end
            else:
                break
        return pos

    def _key(self, start: int) -> tuple[str, int, bool]:
        """(key, where its value starts, whether it is a bare `KEY` to inherit)."""
        text = self.text
        export = _EXPORT.match(text, start)
        if export is not None:
            start += len("export")
            while start < len(text) and text[start] in _BLANK:
                start += 1
        pos = start
        while pos < len(text) and text[pos] not in "=:\n":
            char = text[pos]
            if not (char in _BLANK or char in _KEY_PUNCTUATION or unicodedata.category(char)[0] in "LN"):
                line = text[start:].split("\n", 1)[0]
                raise self._error(pos, f"unexpected character {_quote(char)} in variable name {_quote(line)}")
            pos += 1
        inherited = pos == len(text) or text[pos] == "\n"
        key = _rstrip_space(text[start:pos])
        if " " in key:
            raise self._error(start, f"key {_quote(key)} cannot contain a space")
        pos = min(pos + 1, len(text))
        if not inherited:
            while pos < len(text) and text[pos] in _BLANK:
                pos += 1
        return key, pos, inherited

    def _value(self, start: int, out: dict[str, str], problems: list[Problem]) -> tuple[str, int]:
        """(value, where the next statement may start) for the value beginning at `start`."""
        text = self.text
        if start < len(text) and text[start] in _QUOTES:
            return self._quoted(start, out, problems)
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        raw = _rstrip_space(text[start:end].split(" #", 1)[0])
        return self._expand(raw, start, out, problems), min(end + 1, len(text))

    def _quoted(self, start: int, out: dict[str, str], problems: list[Problem]) -> tuple[str, int]:
        """A quoted value: `\\<quote>` yields the quote, other backslashes are kept for later."""
        text = self.text
        quote = text[start]
        chars: list[str] = []
        escaped = False
        for pos in range(start + 1, len(text)):
            char = text[pos]
            if char == quote and not escaped:
                value = "".join(chars)
                if quote == '"':
                    value = self._expand(_unescape(value), start, out, problems)
                return value, pos + 1
            if char == "\\" and not escaped:
                escaped = True
                continue
            if escaped and char != quote:
                chars.append("\\")
            escaped = False
            chars.append(char)
        line = text[start:].split("\n", 1)[0]
        raise _Unterminated(self._error(start, f"unterminated quoted value {line}").problems)

    def _expand(self, value: str, start: int, out: dict[str, str], problems: list[Problem]) -> str:
        def lookup(name: str) -> str | None:
            found = self.lookup(name)
            return found if found is not None else out.get(name)

        try:
            return substitute(value, lookup, on_missing=self.on_missing)
        except InterpolationError as err:
            problems.extend(self._error(start, err.message).problems)
            return ""

    def _error(self, pos: int, message: str) -> SpecError:
        line_start = self.text.rfind("\n", 0, pos) + 1
        line = self.text.count("\n", 0, pos) + 1
        return SpecError([Problem(message, location=Location(self.filename, line, pos - line_start + 1))])


def _is_space(char: str) -> bool:
    """Go's unicode.IsSpace; Python's str.isspace also counts the ASCII separators 0x1c-0x1f."""
    return char.isspace() and not "\x1c" <= char <= "\x1f"


def _rstrip_space(text: str) -> str:
    end = len(text)
    while end and _is_space(text[end - 1]):
        end -= 1
    return text[:end]


def _unescape(value: str) -> str:
    """Expand double-quote escapes; `\\$` becomes `$$` so substitution leaves a literal `$`."""

    def one(match: re.Match[str]) -> str:
        body = match.group(0)[1:]
        if body[0] != "0":
            return _SIMPLE_ESCAPES.get(body, match.group(0))
        digits = body[1:]
        # Like Go's UnquoteChar on `\ddd`: exactly three octal digits, at most 0o377.
        if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) <= 0o377:
            return chr(int(digits, 8))
        return match.group(0)

    return _ESCAPE.sub(one, value)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
