"""Parsing conmon's k8s-file logs: partial lines, tail, since, nanosecond timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackup.runtime.engine.containers.k8s_log import parse_timestamp, read_logs

LOG = (
    "2026-11-27T10:00:00.000000001+00:00 stdout F first\n"
    "2026-11-27T10:00:01.123456789+00:00 stdout P par\n"
    "2026-11-27T10:00:01.200000000+00:00 stderr F err line\n"
    "2026-11-27T10:00:01.300000000+00:00 stdout P ti\n"
    "2026-11-27T10:00:01.400000000+00:00 stdout F al\n"
    "2026-11-27T10:00:02.000000000+00:00 stdout F \n"
    "2026-11-27T10:00:03.000000000+00:00 stdout F with  two  spaces\n"
)


def test_partial_lines_are_joined_per_stream(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_text(LOG)
    lines = list(read_logs(log))
    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "first"),
        ("stderr", "err line"),
        ("stdout", "partial"),
        ("stdout", ""),
        ("stdout", "with  two  spaces"),
    ]
    assert lines[2].time == datetime(2026, 11, 27, 10, 0, 1, 123456, tzinfo=UTC)


def test_tail_and_since(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_text(LOG)
    assert [line.text for line in read_logs(log, tail=2)] == ["", "with  two  spaces"]
    assert list(read_logs(log, tail=0)) == []
    since = datetime(2026, 11, 27, 10, 0, 1, 500000)  # naive: UTC
    assert [line.text for line in read_logs(log, since=since)] == ["", "with  two  spaces"]


def test_unterminated_partial_and_garbage(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_text("not a log line\n2026-11-27T10:00:00.5Z stdout P still writ")
    assert [line.text for line in read_logs(log)] == ["still writ"]
    assert list(read_logs(tmp_path / "missing.log")) == []


def test_timestamp_offsets() -> None:
    stamp = parse_timestamp("2026-11-27T11:00:00.999999999+01:00")
    assert stamp.utcoffset() == timedelta(hours=1)
    assert stamp.astimezone(UTC) == datetime(2026, 11, 27, 10, 0, 0, 999999, tzinfo=UTC)
    assert parse_timestamp("2026-11-27T10:00:00Z").tzinfo == UTC
