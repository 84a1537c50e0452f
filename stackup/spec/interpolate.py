"""Compose variable substitution (`$VAR`, `${VAR:-default}`, ...), bug-for-bug with compose-go.

Stack files written for Docker Compose must mean the same thing here, including the odd corners
(`$` before a non-name character stays literal, a default may nest further substitutions, only
the first error of a string is reported). So this follows compose-go's `template` package
step by step: one regular expression finds each substitution, a brace counter cuts a braced one
at its closing brace, and the text after that brace is substituted on its own.

Unset variables become the empty string; `on_missing` hears about each one so the loader can
warn as Compose does. A variable only counted as missing when its value is actually used: in
`${A:-$B}` with `A` set, `B` is never looked up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from stackup.spec.errors import KeyPath, ProblemCollector
from stackup.spec.tree import Tagged

Lookup = Callable[[str], str | None]
OnMissing = Callable[[str], None]

_NAME = r"[_A-Za-z][_A-Za-z0-9]*"
# compose-go finds each substitution with one regular expression,
#   \$(?:(\$)|(NAME)|\{(?:(NAME(?::?[-+?].*)?)\}|()))
# whose greedy `.*` runs to the last `}` of the line; a brace counter then cuts the match at its
# real closing brace and the text after it is substituted on its own. Run as is, that costs a
# scan to the end of the line per substitution and a recursion per substitution (a value with
# a few hundred `${A:-x}` overflowed the stack). `_HEAD` matches only up to the operator and
# `_scan` finds the same end with the line's last `}`, so the walk is flat and linear.
_HEAD = re.compile(rf"\$(?:(?P<escaped>\$)|(?P<named>{_NAME})|\{{(?P<name>{_NAME})?(?P<op>:?[-+?])?)")
_NAME_PREFIX = re.compile(_NAME)

MAX_NESTING = 32
"""Deepest `${A:-${B:-...}}` substituted; deeper is an error, not a stack overflow."""


class InterpolationError(ValueError):
    """A value cannot be substituted: bad `$` syntax, or a required (`?`) variable is missing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def substitute(template: str, lookup: Lookup, *, on_missing: OnMissing | None = None,
               _depth: int = 0) -> str:
    """Replace every substitution in `template`; raise the first `InterpolationError` met.

    Like compose-go, the whole string is still walked after an error, so `on_missing` hears
    about every unset variable even in a string that fails.
    """
    if "$" not in template:  # most values: nothing to do
        return template
    if _depth > MAX_NESTING:
        raise InterpolationError(f"substitutions nested deeper than {MAX_NESTING} levels")
    first_error: InterpolationError | None = None
    out: list[str] = []
    pos = 0
    lines = _Lines(template)
    rests: list[tuple[int, int]] = []  # compose-go substitutes these on their own: messages quote them
    while (start := template.find("$", pos)) >= 0:
        found = _scan(template, start, lines)
        if found is None:
            out.append(template[pos:start + 1])
            pos = start + 1
            continue
        matched, kind, greedy = found
        out.append(template[pos:start])
        while rests and start >= rests[-1][1]:
            rests.pop()
        quoted = rests[-1] if rests else (0, len(template))
        pos = start + len(matched)
        if greedy > len(matched):
            rests.append((pos, start + greedy))
        if kind == "invalid":
            quote = json.dumps(template[slice(*quoted)], ensure_ascii=False) if not first_error else ""
            first_error = first_error or InterpolationError(
                f"invalid interpolation format for {quote}. You may need to escape any $ with another $.")
            continue
        try:
            out.append(_replace_one(matched, kind, lookup, on_missing, _depth))
        except InterpolationError as err:
            first_error = first_error or err
    out.append(template[pos:])
    if first_error is not None:
        raise first_error
    return "".join(out)


class _Lines:
    """The last `}` of the line holding a position (where the greedy `.*` stops), found once
    per line: substitutions are met in order, so the current line is remembered."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._line = (0, -1, -1)  # begin, end, last brace

    def last_brace(self, at: int) -> int:
        begin, end, last = self._line
        if not begin <= at <= end:
            end = self.text.find("\n", at)
            end = len(self.text) if end < 0 else end
            begin = self.text.rfind("\n", 0, at) + 1
            last = self.text.rfind("}", begin, end)
            self._line = (begin, end, last)
        return last


def _scan(text: str, start: int, lines: _Lines) -> tuple[str, str, int] | None:
    """The substitution starting at `text[start]` (a `$`), cut at its closing brace, its kind
    (escaped, named, braced, invalid) and the length compose-go's regexp matched; None when
    this `$` starts none."""
    head = _HEAD.match(text, start)
    if head is None:
        return None
    if head["escaped"]:
        return "$$", "escaped", 2
    if head["named"]:
        return head.group(0), "named", len(head.group(0))
    end = -1
    if head["name"] and not head["op"] and text.startswith("}", head.end()):
        end = head.end() + 1
    elif head["name"] and head["op"]:
        last = lines.last_brace(head.end())
        if last >= head.end():
            end = last + 1
    if end < 0:
        return "${", "invalid", 2
    close = _closing_brace(text, start, end)
    return text[start:(close + 1 if close >= 0 else end)], "braced", end - start


def interpolate_tree(tree: Any, lookup: Lookup, collector: ProblemCollector, path: KeyPath = (), *,
                     on_missing: OnMissing | None = None) -> Any:
    """A copy of `tree` with every string value substituted; mapping keys are never touched.

    Each failing value is reported at its key path and kept as written, so one run lists every
    broken value instead of stopping at the first.
    """
    if isinstance(tree, str):
        try:
            return substitute(tree, lookup, on_missing=on_missing)
        except InterpolationError as err:
            collector.add(path, err.message)
            return tree
    if isinstance(tree, Tagged):
        return Tagged(tree.tag, interpolate_tree(tree.value, lookup, collector, path,
                                                 on_missing=on_missing))
    if isinstance(tree, dict):
        return {key: interpolate_tree(value, lookup, collector,
                                      (*path, key if isinstance(key, str | int) else str(key)),
                                      on_missing=on_missing)
                for key, value in tree.items()}
    if isinstance(tree, list):
        return [interpolate_tree(item, lookup, collector, (*path, index), on_missing=on_missing)
                for index, item in enumerate(tree)]
    return tree


def _replace_one(matched: str, kind: str, lookup: Lookup, on_missing: OnMissing | None, depth: int) -> str:
    """The replacement for one valid substitution (compose-go's DefaultReplacementAppliedFunc)."""
    if kind == "escaped":
        return "$"
    if kind == "named":
        name = matched[1:]
    else:
        name, operator, argument = _split_braced(matched[2:-1])
        if operator:
            return _apply(operator, name, argument, lookup, on_missing=on_missing, depth=depth)
    value = lookup(name)
    if value is None:
        if on_missing is not None:
            on_missing(name)
        return ""
    return value


def _closing_brace(text: str, start: int, end: int) -> int:
    """Index of the brace closing the first `{` in `text[start:end]`, or -1; compose-go's
    getFirstBraceClosingIndex.

    As upstream, the character right after each `{` is skipped, so `{}` inside a default
    opens a level without closing it; keeping that quirk keeps results identical.
    """
    depth = 0
    i = start
    while i < end:
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        if text[i] == "{":
            depth += 1
            i += 1
        i += 1
    return -1


def _split_braced(braced: str) -> tuple[str, str, str]:
    """`A:-x` -> (`A`, `:-`, `x`); `A` -> (`A`, ``, ``).

    The operator is the one right after the name, which is the earliest operator in the text;
    that is how compose-go picks it, so `${A-x:?y}` is a default, not a requirement.
    """
    name_end = _NAME_PREFIX.match(braced)
    assert name_end is not None
    name = name_end.group(0)
    tail = braced[len(name):]
    width = 2 if tail.startswith(":") else 1 if tail else 0
    return name, tail[:width], tail[width:]


def _apply(operator: str, name: str, argument: str, lookup: Lookup, *, on_missing: OnMissing | None,
           depth: int) -> str:
    """Evaluate `${name<operator>argument}`; `argument` is substituted only when it is used."""
    value = lookup(name)

    def inner(text: str) -> str:
        return substitute(text, lookup, on_missing=on_missing, _depth=depth + 1)

    unset_or_empty = value is None or (operator.startswith(":") and value == "")
    if operator in (":-", "-"):
        return inner(argument) if unset_or_empty else value or ""
    if operator in (":+", "+"):
        return "" if unset_or_empty else inner(argument)
    # `:?` and `?`
    if unset_or_empty:
        reason = inner(argument)
        message = f"required variable {name} is missing a value"
        raise InterpolationError(f"{message}: {reason}" if reason else message)
    return value or ""
