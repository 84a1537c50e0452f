"""Instruction flags (`--from=x`, `--link`, `--mount=...`) checked as BuildKit's BFlags checks them:
known names only (with a "did you mean"), booleans as `--x`, `--x=true|false`, strings need a value,
repeatable flags (`--mount`, `--exclude`) collect, `--` ends the flags. Also Go durations for
HEALTHCHECK."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from enum import StrEnum


class FlagKind(StrEnum):
    BOOL = "bool"
    STRING = "string"
    STRINGS = "strings"


class FlagError(ValueError):
    """A flag BuildKit would refuse; the caller adds the location."""


@dataclass(frozen=True)
class Flags:
    """Parsed flag values by name; absent names were not given."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def string(self, name: str) -> str:
        return self.values.get(name, "")

    def boolean(self, name: str) -> bool:
        return self.values.get(name) == "true"

    def given(self, name: str) -> bool:
        return name in self.values or name in self.lists

    def strings(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())


def parse_flags(given: tuple[str, ...], spec: dict[str, FlagKind]) -> Flags:
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for arg in given:
        if arg == "--":
            break
        if not arg.startswith("--"):
            raise FlagError(f"arg should start with -- : {arg}")
        flag, has_value, value = arg.partition("=")
        name = flag[2:]
        kind = spec.get(name)
        if kind is None:
            hint = difflib.get_close_matches(name, sorted(spec), n=1)
            suffix = f" (did you mean {hint[0]}?)" if hint else ""
            raise FlagError(f"unknown flag: {flag}{suffix}")
        if kind is not FlagKind.STRINGS and name in values:
            raise FlagError(f"duplicate flag specified: {flag}")
        if kind is FlagKind.BOOL:
            if has_value and value == "":
                raise FlagError(f"missing a value on flag: {flag}")
            if value.lower() in ("true", ""):
                values[name] = "true"
            elif value.lower() == "false":
                values[name] = "false"
            else:
                raise FlagError(f"expecting boolean value for flag {flag}, not: {value}")
        elif not has_value:
            raise FlagError(f"missing a value on flag: {flag}")
        elif kind is FlagKind.STRING:
            values[name] = value
        else:
            lists.setdefault(name, []).append(value)
    return Flags(values, {k: tuple(v) for k, v in lists.items()})


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Go's `time.ParseDuration` in nanoseconds (`1h30m`, `1.5s`, `300ms`, `0`)."""
    s = text
    sign = 1
    if s[:1] in ("-", "+"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise FlagError(f'time: invalid duration "{text}"')
    total = 0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            raise FlagError(f'time: invalid duration "{text}"')
        whole, _, frac = m.group(1).partition(".")
        unit = _UNITS[m.group(2)]
        total += int(whole or "0") * unit
        if frac:
            total += int(frac) * unit // 10 ** len(frac)
        pos = m.end()
    if total > 2**63 - 1:
        raise FlagError(f'time: invalid duration "{text}"')
    return sign * total
