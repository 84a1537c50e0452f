"""Go's text primitives that BuildKit's parser leans on, re-stated for Python.

Python's `str.isspace`, `str.strip`, `repr` and `json.loads` differ from Go's `unicode.IsSpace`,
`strings.TrimSpace`, `strconv.Quote` and `encoding/json` in small ways (the file separators
\\x1c-\\x1f are "space" to Python, not to Go; Go quotes with `\\x00`, not `\\0`). Parsing "exactly as
BuildKit does" needs the Go behaviour, so these few functions pin it down in one place.

Files are decoded with `surrogateescape`, so a byte that is not UTF-8 survives as a lone surrogate
(U+DC80-U+DCFF) and is shown by `go_quote` as Go shows it: `\\xNN`.
"""

from __future__ import annotations

import json
import math
from typing import Any

GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
"""Runes for which Go's `unicode.IsSpace` is true."""

WS_SPLIT = "\t\v\f\r "
"""The class of BuildKit's `reWhitespace` (`[\\t\\v\\f\\r ]+`): no newline, no Unicode spaces."""


def is_space(ch: str) -> bool:
    return ch in GO_SPACE


def trim_space(s: str) -> str:
    """`strings.TrimSpace`."""
    start, end = 0, len(s)
    while start < end and s[start] in GO_SPACE:
        start += 1
    while end > start and s[end - 1] in GO_SPACE:
        end -= 1
    return s[start:end]


def trim_left_space(s: str) -> str:
    i = 0
    while i < len(s) and s[i] in GO_SPACE:
        i += 1
    return s[i:]


def split_ws(s: str, limit: int = -1) -> list[str]:
    """`reWhitespace.Split(s, limit)`: split on runs of tab/vt/ff/cr/space, empty ends kept."""
    out: list[str] = []
    i = start = 0
    n = len(s)
    while i < n:
        if limit > 0 and len(out) == limit - 1:
            break
        if s[i] in WS_SPLIT:
            j = i
            while j < n and s[j] in WS_SPLIT:
                j += 1
            out.append(s[start:i])
            start = i = j
            continue
        i += 1
    out.append(s[start:])
    return out


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """`strconv.Quote`: double-quoted, Go escapes, printable Unicode kept as is."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0xDC80 <= code <= 0xDCFF:  # a raw non-UTF-8 byte (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_quote_list(items: tuple[str, ...] | list[str]) -> str:
    """`fmt.Sprintf("%q", []string{...})`: `["a" "b"]`."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


class NotStringArray(ValueError):
    """A JSON array whose items are not all strings: BuildKit refuses it rather than falling back."""


class _Overflow(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN/Infinity are not JSON to Go


def _float(text: str) -> Any:
    if math.isinf(float(text)):
        raise _Overflow(text)  # Go cannot store it in a float64: an unmarshal error
    return float(text)


def parse_json_strings(text: str) -> list[str] | None:
    """A JSON array of strings as Go's `json.Unmarshal` into `[]any` reads it.

    Returns None where Go reports an error (the caller falls back to the shell form), raises
    `NotStringArray` where every item parses but one is not a string. Invalid UTF-8 and lone
    surrogate escapes become U+FFFD, as Go decodes them.
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_float)
    except (ValueError, RecursionError):
        return None
    if value is None:
        return []
    if not isinstance(value, list):
        return None
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise NotStringArray("when using JSON array syntax, arrays must be comprised of strings only")
        out.append("".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in item))
    return out


def go_clean(path: str) -> str:
    """`path/filepath.Clean` on Unix: lexical, `..` above the root dropped, `""` -> `"."`."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    body = "/".join(parts)
    if rooted:
        return "/" + body
    return body or "."
