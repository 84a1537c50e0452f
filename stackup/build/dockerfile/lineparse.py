"""From one logical line to a `Node`: the keyword, the `--flags`, and the per-instruction argument
rules of BuildKit's parser (JSON or shell form, whitespace lists, `key=value` pairs, HEALTHCHECK,
ONBUILD). No substitution happens here; quotes and escapes stay as written except in flags.

Functions raise `LineError` with BuildKit's message; the scanner adds the location.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stackup.build.dockerfile.ast import Node
from stackup.build.dockerfile.gotext import (
    NotStringArray,
    is_space,
    parse_json_strings,
    split_ws,
    trim_left_space,
    trim_space,
)


class LineError(ValueError):
    """A line BuildKit's parser refuses."""


@dataclass(frozen=True)
class _Args:
    values: tuple[str, ...] = ()
    json: bool = False
    sub: Node | None = None


_Parser = Callable[[str, str], _Args]


def split_command(line: str, escape: str) -> tuple[str, tuple[str, ...], str]:
    """Keyword, flags, rest (trimmed)."""
    parts = split_ws(trim_space(line), 2)
    if len(parts) < 2:
        return parts[0], (), ""
    rest, flags = extract_flags(parts[1], escape)
    return parts[0], flags, trim_space(rest)


def extract_flags(line: str, escape: str) -> tuple[str, tuple[str, ...]]:
    """Leading `--name[=value]` words (quotes and escapes resolved); `--` ends them."""
    words: list[str] = []
    buf: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    quote = ""
    blank_ok = False
    n = len(line)
    pos = 0
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], tuple(words)
            phase = in_word
        if pos == n:
            word = "".join(buf)
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == in_word:
            if is_space(ch):
                word = "".join(buf)
                phase = in_spaces
                if word == "--":
                    return line[pos:], tuple(words)
                if blank_ok or word:
                    words.append(word)
                buf.clear()
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
                pos += 1
                continue
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            buf.append(ch)
            pos += 1
            continue
        # in_quote
        if ch == quote:
            phase = in_word
            pos += 1
            continue
        if ch == escape:
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        buf.append(ch)
        pos += 1
    return "", tuple(words)


def parse_words(rest: str, escape: str) -> list[str]:
    """Whitespace-separated words; quotes group (and are kept), escapes are kept."""
    words: list[str] = []
    buf: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    quote = ""
    blank_ok = False
    n = len(rest)
    pos = 0
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            phase = in_word
        if pos == n:
            if blank_ok or buf:
                words.append("".join(buf))
            break
        if phase == in_word:
            if is_space(ch):
                phase = in_spaces
                if blank_ok or buf:
                    words.append("".join(buf))
                buf.clear()
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                buf.append(ch)
                pos += 1
                ch = rest[pos]
            buf.append(ch)
            pos += 1
            continue
        if ch == quote:
            phase = in_word
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            buf.append(ch)
            ch = rest[pos]
        buf.append(ch)
        pos += 1
    return words


def _ignore(rest: str, escape: str) -> _Args:
    return _Args(("",))


def _name_val(key: str) -> _Parser:
    def parse(rest: str, escape: str) -> _Args:
        words = parse_words(rest, escape)
        if not words:
            return _Args()
        if "=" not in words[0]:
            parts = split_ws(rest, 2)
            if len(parts) < 2:
                raise LineError(f"{key} must have two arguments")
            return _Args((parts[0], parts[1], ""))
        out: list[str] = []
        for word in words:
            if "=" not in word:
                from stackup.build.dockerfile.gotext import go_quote

                raise LineError(
                    f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value"
                )
            name, value = word.split("=", 1)
            out.extend((name, value, "="))
        return _Args(tuple(out))

    return parse


def _words(rest: str, escape: str) -> _Args:
    return _Args(tuple(parse_words(rest, escape)))


def _ws_list(rest: str, escape: str) -> _Args:
    if rest == "":
        return _Args()
    return _Args(tuple(split_ws(rest)))


def _string(rest: str, escape: str) -> _Args:
    return _Args() if rest == "" else _Args((rest,))


def _json(rest: str) -> _Args | None:
    rest = trim_left_space(rest)
    if not rest.startswith("["):
        return None
    try:
        values = parse_json_strings(rest)
    except NotStringArray as exc:
        raise LineError(str(exc)) from None
    return None if values is None else _Args(tuple(values), json=True)


def _maybe_json(rest: str, escape: str) -> _Args:
    if rest == "":
        return _Args()
    return _json(rest) or _Args((rest,))


def _maybe_json_list(rest: str, escape: str) -> _Args:
    return _json(rest) or _ws_list(rest, escape)


def _health(rest: str, escape: str) -> _Args:
    sep = 0
    while sep < len(rest) and not is_space(rest[sep]):
        sep += 1
    nxt = sep
    while nxt < len(rest) and is_space(rest[nxt]):
        nxt += 1
    if sep == 0:
        return _Args()
    cmd = _maybe_json(rest[nxt:], escape)
    return _Args((rest[:sep], *cmd.values), json=cmd.json)


def _onbuild(rest: str, escape: str) -> _Args:
    if rest == "":
        return _Args()
    return _Args(sub=node_from_line(rest, escape))


_DISPATCH: dict[str, _Parser] = {
    "add": _maybe_json_list,
    "arg": _words,
    "cmd": _maybe_json,
    "copy": _maybe_json_list,
    "entrypoint": _maybe_json,
    "env": _name_val("ENV"),
    "expose": _ws_list,
    "from": _ws_list,
    "healthcheck": _health,
    "label": _name_val("LABEL"),
    "maintainer": _string,
    "onbuild": _onbuild,
    "run": _maybe_json,
    "shell": _maybe_json,
    "stopsignal": _string,
    "user": _string,
    "volume": _maybe_json_list,
    "workdir": _string,
}

KNOWN_INSTRUCTIONS = frozenset(_DISPATCH)


def node_from_line(line: str, escape: str) -> Node:
    """Parse one logical line (continuations already joined) into a `Node` without location."""
    keyword, flags, rest = split_command(line, escape)
    parsed = _DISPATCH.get(keyword.lower(), _ignore)(rest, escape)
    return Node(
        keyword=keyword, args=parsed.values, flags=flags, json=parsed.json, sub=parsed.sub, original=line
    )
