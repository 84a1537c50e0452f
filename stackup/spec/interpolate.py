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
# Alternatives in compose-go's order: `$$`, `$NAME`, `${NAME[op arg]}`, or a bare `${` that is
# invalid. `.*` is greedy on purpose: the match may run past the real closing brace, and
# `_closing_brace` then cuts it back, which is what lets defaults contain `}` and `${...}`.
_PATTERN = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<named>{_NAME})|\{{(?:(?P<braced>{_NAME}(?::?[-+?].*)?)\}}|(?P<invalid>)))"
)
_NAME_PREFIX = re.compile(_NAME)


class InterpolationError(ValueError):
    """A value cannot be substituted: bad `$` syntax, or a required (`?`) variable is missing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def substitute(template: str, lookup: Lookup, *, on_missing: OnMissing | None = None) -> str:
    """Replace every substitution in `template`; raise the first `InterpolationError` met.

    Like compose-go, the whole string is still walked after an error, so `on_missing` hears
    about every unset variable even in a string that fails.
    """
    first_error: list[InterpolationError] = []

    def replace(match: re.Match[str]) -> str:
        try:
            return _replace_one(match.group(0), template, lookup, on_missing)
        except InterpolationError as err:
            if not first_error:
                first_error.append(err)
            return ""

    result = _PATTERN.sub(replace, template)
    if first_error:
        raise first_error[0]
    return result


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


def _replace_one(matched: str, template: str, lookup: Lookup, on_missing: OnMissing | None) -> str:
    """The replacement for one match of `_PATTERN` (compose-go's DefaultReplacementAppliedFunc)."""
    close = _closing_brace(matched)
    rest = ""
    if close >= 0:
        matched, rest = matched[: close + 1], matched[close + 1:]
    # `matched` starts with `$`, so the pattern matches it again at position 0.
    groups = _PATTERN.match(matched)
    assert groups is not None
    if groups["escaped"]:
        return "$"
    name = groups["named"]
    if name is None:
        braced = groups["braced"]
        if not braced:
            raise InterpolationError(
                f"invalid interpolation format for {json.dumps(template, ensure_ascii=False)}. "
                "You may need to escape any $ with another $."
            )
        name, operator, argument = _split_braced(braced)
        if operator:
            applied = _apply(operator, name, argument, lookup, on_missing)
            return applied + substitute(rest, lookup, on_missing=on_missing)
    value = lookup(name)
    if value is None:
        if on_missing is not None:
            on_missing(name)
        return ""
    return value


def _closing_brace(text: str) -> int:
    """Index of the brace closing the first `{`, or -1; compose-go's getFirstBraceClosingIndex.

    As upstream, the character right after each `{` is skipped, so `{}` inside a default
    opens a level without closing it; keeping that quirk keeps results identical.
    """
    depth = 0
    i = 0
    while i < len(text):
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


def _apply(operator: str, name: str, argument: str, lookup: Lookup, on_missing: OnMissing | None) -> str:
    """Evaluate `${name<operator>argument}`; `argument` is substituted only when it is used."""
    value = lookup(name)
    unset_or_empty = value is None or (operator.startswith(":") and value == "")
    if operator in (":-", "-"):
        return substitute(argument, lookup, on_missing=on_missing) if unset_or_empty else value or ""
    if operator in (":+", "+"):
        return "" if unset_or_empty else substitute(argument, lookup, on_missing=on_missing)
    # `:?` and `?`
    if unset_or_empty:
        reason = substitute(argument, lookup, on_missing=on_missing)
        message = f"required variable {name} is missing a value"
        raise InterpolationError(f"{message}: {reason}" if reason else message)
    return value or ""
