"""Go durations and Docker byte sizes: parse, print back, reject what Compose rejects."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from stackup.spec.units import (
    ByteSize,
    Duration,
    format_duration,
    normalize_duration,
    parse_bytes,
    parse_duration,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "nanos", "canonical"),
    [
        ("1m30s", 90 * S, "1m30s"),
        ("90s", 90 * S, "1m30s"),
        ("10s", 10 * S, "10s"),
        ("1h", 3600 * S, "1h0m0s"),
        ("1.5h", 5400 * S, "1h30m0s"),
        ("500ms", S // 2, "500ms"),
        ("1.5s", 3 * S // 2, "1.5s"),
        ("2us", 2000, "2\u00b5s"),
        ("2\u00b5s", 2000, "2\u00b5s"),
        ("1.5ms", 1_500_000, "1.5ms"),
        ("100ns", 100, "100ns"),
        ("0", 0, "0s"),
        ("0s", 0, "0s"),
        ("1d", 86400 * S, "24h0m0s"),
        ("1w", 7 * 86400 * S, "168h0m0s"),
        (".5s", S // 2, "500ms"),
        ("-1m", -60 * S, "-1m0s"),
        ("1h2m3.25s", (3723 * S) + S // 4, "1h2m3.25s"),
    ],
)
def test_duration_parse_and_format(text: str, nanos: int, canonical: str) -> None:
    assert parse_duration(text) == nanos
    assert format_duration(nanos) == canonical
    assert normalize_duration(canonical) == canonical


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10", "missing unit"),
        (10, "missing unit"),
        ("", "invalid duration"),
        ("s", "invalid duration"),
        ("1x", 'unknown unit "x"'),
        ("1h 2m", "invalid duration"),
        (True, "invalid duration"),
        (None, "invalid duration"),
    ],
)
def test_duration_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_duration_type_in_models() -> None:
    adapter = TypeAdapter(Duration)
    value = adapter.validate_python("1m30s")
    assert isinstance(value, Duration)
    assert value.seconds == 90.0
    assert str(value) == "1m30s"
    assert adapter.dump_python(value, mode="json") == "1m30s"
    assert adapter.validate_python(0) == 0
    with pytest.raises(ValidationError, match="with a unit"):
        adapter.validate_python(30)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512m", 512 * 1024**2),
        ("1g", 1024**3),
        ("1gb", 1024**3),
        ("1GiB", 1024**3),
        ("100k", 100 * 1024),
        ("100K", 100 * 1024),
        ("2048", 2048),
        (2048, 2048),
        ("-1", -1),
        ("1.5g", int(1.5 * 1024**3)),
        ("10 MB", 10 * 1024**2),
        ("64b", 64),
        ("1t", 1024**4),
    ],
)
def test_bytes(value: object, expected: int) -> None:
    assert parse_bytes(value) == expected


@pytest.mark.parametrize("value", ["abc", "1x", "1kk", "1gig", "", "1.2.3", True, [1]])
def test_bytes_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_bytes(value)


def test_byte_size_type_prints_as_string() -> None:
    adapter = TypeAdapter(ByteSize)
    assert adapter.validate_python("1g") == 1024**3
    assert adapter.dump_python(1024, mode="json") == "1024"
    with pytest.raises(ValidationError, match="invalid suffix"):
        adapter.validate_python("12q")
