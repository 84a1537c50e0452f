"""Shell patterns inside `${var#pattern}`, `${var%pattern}` and `${var/pattern/repl}`, converted
to regular expressions the way BuildKit converts them (`*`, `?`, backslash escapes; the rest literal),
and Go's replacement-template rules for `//` (replace all)."""

from __future__ import annotations

import re


class ShellError(ValueError):
    """A substitution the lexer cannot do; the caller adds file and line."""


_META = frozenset("[]{}.+()|^$")


def pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell pattern (`*`, `?`, `\\` escapes) as a regex, as BuildKit converts it."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue
            if nxt not in ("*", "?", "\\"):
                raise ShellError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'")
            out.append("\\" + nxt)
            i += 1
        elif tok in _META:
            out.append("\\" + tok)
        else:
            out.append(re.escape(tok) if not tok.isalnum() else tok)
    return re.compile("".join(out))


def go_template(template: str) -> str:
    """Go's `Regexp.Expand` for a pattern without groups: `$$` is `$`, `$name`/`${name}` are empty,
    a `$` that starts no name stays literal."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        rest = template[i + 1 :]
        if rest.startswith("$"):
            out.append("$")
            i += 2
            continue
        m = re.match(r"\{([A-Za-z0-9_]+)\}", rest) or re.match(r"([A-Za-z0-9_]+)", rest)
        if m:
            i += 1 + m.end()
            continue
        out.append("$")
        i += 1
    return "".join(out)


def _reverse_pattern(pattern: str) -> str:
    chars = list(pattern)
    out = [""] * len(chars)
    last = len(chars) - 1
    i = 0
    while i <= last:
        tok = chars[i]
        j = last - i
        if tok == "\\" and i != last:
            out[j - 1] = tok
            out[j] = chars[i + 1]
            i += 2
        else:
            out[j] = tok
            i += 1
    return "".join(out)


def trim_prefix(word: str, value: str, greedy: bool) -> str:
    m = pattern_regex(word, greedy=greedy, anchored=True).search(value)
    return value[m.end() :] if m else value


def trim_suffix(word: str, value: str, greedy: bool) -> str:
    return trim_prefix(_reverse_pattern(word), value[::-1], greedy)[::-1]
