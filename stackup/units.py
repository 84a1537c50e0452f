"""Go-style durations and Docker-style byte sizes, parsed and printed the way Compose does.

Compose files inherit their value syntax from Go: `stop_grace_period: 1m30s` is parsed by
`time.ParseDuration` (plus `d` and `w`, which compose-go accepts through str2duration) and
printed back by `time.Duration.String` (`1h0m0s`, `1.5s`, `500ms`, `2µs`). Sizes such as
`mem_limit: 512m` follow docker/go-units `RAMInBytes`: binary multiples, case-insensitive, an
optional `b`/`ib` suffix. Keeping both exactly compatible means `stackup config` prints what
`docker compose config` prints, and a canonical file loads back to the same model.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_DURATION_UNITS: dict[str, int] = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign, what Go prints
    "\u03bcs": MICROSECOND,  # Greek mu, which Go also accepts
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
    "d": 24 * HOUR,
    "w": 7 * 24 * HOUR,
}
_DURATION_PART = re.compile(r"([0-9]*)(\.[0-9]*)?([a-z\u00b5\u03bc]*)")
_MAX_NS = (1 << 63) - 1

DURATION_PATTERN = r"^[-+]?(0|([0-9]*(\.[0-9]*)?(ns|us|\u00b5s|\u03bcs|ms|s|m|h|d|w))+)$"


def parse_duration(value: object) -> int:
    """A Go duration (`1m30s`, `1.5h`, `500ms`) -> nanoseconds; raises ValueError when invalid.

    Like compose-go, a bare number other than `0` is rejected: `10` is ambiguous (seconds? ms?)
    and Go refuses it with "missing unit".
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid duration {value!r}: expected a string like 10s or 1m30s")
    text = str(value)
    original = text
    sign = 1
    if text and text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(f'invalid duration "{original}"')
    total = Fraction(0)
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f'invalid duration "{original}"')
        whole, frac, unit = match.groups()
        if not whole and (frac is None or len(frac) <= 1):
            raise ValueError(f'invalid duration "{original}"')
        if not unit:
            raise ValueError(f'missing unit in duration "{original}" (for example 10s, 1m30s, 500ms)')
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            raise ValueError(f'unknown unit "{unit}" in duration "{original}" (use ns, us, ms, s, m, h)')
        number = Fraction(int(whole or "0"))
        if frac and len(frac) > 1:
            number += Fraction(int(frac[1:]), 10 ** (len(frac) - 1))
        total += number * scale
        pos = match.end()
    nanos = int(total)  # Go truncates fractions of a nanosecond
    if nanos > _MAX_NS:
        raise ValueError(f'invalid duration "{original}": out of range')
    return sign * nanos


def _frac(value: int, precision: int) -> tuple[int, str]:
    """Split `value` into (value // 10**precision, ".ddd" with trailing zeros dropped)."""
    digits = ""
    printed = False
    for _ in range(precision):
        digit = value % 10
        printed = printed or digit != 0
        if printed:
            digits = str(digit) + digits
        value //= 10
    return value, ("." + digits if printed else "")


def format_duration(nanos: int) -> str:
    """Nanoseconds -> Go's `time.Duration.String()` form (`1m30s`, `1h0m0s`, `1.5s`, `2µs`)."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    u = abs(nanos)
    if u < SECOND:
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            whole, frac = _frac(u, 3)
            return f"{sign}{whole}{frac}\u00b5s"
        whole, frac = _frac(u, 6)
        return f"{sign}{whole}{frac}ms"
    secs, frac = _frac(u, 9)
    out = f"{secs % 60}{frac}s"
    minutes = secs // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        hours = minutes // 60
        if hours:
            out = f"{hours}h{out}"
    return sign + out


def normalize_duration(value: object) -> str:
    """Any accepted duration spelling -> Go's canonical string (what `config` prints)."""
    return format_duration(parse_duration(value))


class Duration(int):
    """A duration in nanoseconds that prints, and serialises to JSON, as Go does.

    An `int` subclass so arithmetic and comparison just work; `seconds` is what runtimes want.
    """

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, Duration):
            return value
        return cls(parse_duration(value))

    @property
    def seconds(self) -> float:
        return int(self) / SECOND

    def __str__(self) -> str:
        return format_duration(int(self))

    def __repr__(self) -> str:
        return f"Duration({format_duration(int(self))!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_duration,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: format_duration(int(v)), when_used="json"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": DURATION_PATTERN, "examples": ["10s", "1m30s"]}


def _validate_duration(value: object) -> Duration:
    bare_number = isinstance(value, int) and not isinstance(value, bool | Duration)
    if bare_number and value != 0:
        raise PydanticCustomError(
            "duration", "expected a duration with a unit such as 10s or 1m30s, got {value}", {"value": value}
        )
    try:
        return Duration.parse(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


# --- byte sizes ---------------------------------------------------------------------------------

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_INT = re.compile(r"[-+]?[0-9]+")
_NUMBER = re.compile(r"[0-9]*\.?[0-9]*")


def parse_bytes(value: object) -> int:
    """`512m`, `1g`, `1gb`, `1GiB`, `100k`, `2048` -> bytes, as docker/go-units `RAMInBytes`.

    Plain integers (including `-1`, "unlimited" for `memswap_limit`) pass through unchanged,
    as compose-go tries `ParseInt` before the unit parser.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}: expected a number of bytes or a string like 512m")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid size {value!r}: expected a number of bytes or a string like 512m")
    text = value
    if _INT.fullmatch(text):
        return int(text)
    sep = max(text.rfind(ch) for ch in "0123456789. ")
    if sep == -1:
        raise ValueError(f'invalid size "{value}"')
    if text[sep] == " ":
        num, suffix = text[:sep], text[sep + 1 :]
    else:
        num, suffix = text[: sep + 1], text[sep + 1 :]
    if not _NUMBER.fullmatch(num) or not any(c.isdigit() for c in num):
        raise ValueError(f'invalid size "{value}"')
    size = float(num)
    suffix = suffix.lower()
    if not suffix or suffix == "b":
        return int(size)
    mult = _BINARY.get(suffix[0])
    if mult is None or len(suffix) > 3 or (len(suffix) == 2 and suffix[1] != "b") or (
        len(suffix) == 3 and suffix[1:] != "ib"
    ):
        raise ValueError(f'invalid suffix "{suffix}" in size "{value}" (use b, k, m, g, t or p)')
    return int(size * mult)


def validate_bytes(value: object) -> int:
    """Pydantic hook for `ByteSize`: parse, turning ValueError into a located, readable error."""
    try:
        return parse_bytes(value)
    except ValueError as exc:
        raise PydanticCustomError("byte_size", str(exc)) from None


ByteSize = Annotated[
    int,
    BeforeValidator(validate_bytes),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema({"type": ["string", "integer"], "examples": ["512m", "1g", 1048576]}),
]
"""Bytes in the model; printed as a decimal string in `config`, as compose-go's `UnitBytes` is."""
