"""Durations and byte sizes, re-exported from `stackup.units` where they now live.

The engine needs them too (health-check durations) and must not import the spec, so the one
implementation sits in a neutral module; this name stays so the spec's imports keep working.
"""

from __future__ import annotations

from stackup.units import (
    DURATION_PATTERN,
    HOUR,
    MICROSECOND,
    MILLISECOND,
    MINUTE,
    NANOSECOND,
    SECOND,
    ByteSize,
    Duration,
    format_duration,
    normalize_duration,
    parse_bytes,
    parse_duration,
    validate_bytes,
)

__all__ = [
    "DURATION_PATTERN",
    "HOUR",
    "MICROSECOND",
    "MILLISECOND",
    "MINUTE",
    "NANOSECOND",
    "SECOND",
    "ByteSize",
    "Duration",
    "format_duration",
    "normalize_duration",
    "parse_bytes",
    "parse_duration",
    "validate_bytes",
]
