"""`logging:` options read as Docker's json-file and local drivers read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers.k8s_log import read_logs
from stackup.runtime.engine.containers.logpolicy import (
    DEFAULT_MAX_FILE,
    DEFAULT_MAX_SIZE,
    LogDriver,
    LogPolicy,
    log_files,
    parse_size,
    policy,
)
from stackup.runtime.engine.containers.logstream import LogReader


@pytest.mark.parametrize(
    ("text", "size"),
    [("10m", 10 << 20), ("512k", 512 << 10), ("1g", 1 << 30), ("5000", 5000), ("1.5m", 1572864)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["ten", "10q", "", "100"])
def test_bad_sizes_say_what_to_write(text: str) -> None:
    with pytest.raises(RuntimeFailure, match="max-size"):
        parse_size(text)


def test_defaults_and_docker_rules() -> None:
    assert policy(None, {}) == LogPolicy(LogDriver.JSON_FILE, DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE)
    assert policy("json-file", {"max-size": "1m"}) == LogPolicy(LogDriver.JSON_FILE, 1 << 20, 1)
    assert policy("json-file", {"max-size": "1m", "max-file": "4"}).max_file == 4
    assert policy("local", {}) == LogPolicy(LogDriver.LOCAL, 20 << 20, 5)
    assert policy("none", {"max-size": "1m"}).keeps_log is False
    assert policy("json-file", {"max-size": "1m"}).conmon_truncates
    with pytest.raises(RuntimeFailure, match="max-file"):
        policy("json-file", {"max-file": "0"})
    with pytest.raises(RuntimeFailure, match="labels"):
        policy("json-file", {"labels": "a"})
    with pytest.raises(RuntimeFailure, match="'gelf' is not available"):
        policy("gelf", {})


def test_log_files_oldest_first(tmp_path: Path) -> None:
    current = tmp_path / "ctr.log"
    for name in ("ctr.log", "ctr.log.1", "ctr.log.2", "ctr.log.10", "ctr.log.tmp"):
        (tmp_path / name).write_text("")
    assert [p.name for p in log_files(current)] == ["ctr.log.10", "ctr.log.2", "ctr.log.1", "ctr.log"]


def test_reader_follows_across_a_rotation_and_a_truncation(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_text("2026-01-01T00:00:00Z stdout F one\n")
    with LogReader(log) as reader:
        assert [line.text for line in reader.read_new()] == ["one"]
        with log.open("a") as handle:  # conmon writes on until it reopens
            handle.write("2026-01-01T00:00:01Z stdout P tw\n")
        log.rename(tmp_path / "ctr.log.1")
        with (tmp_path / "ctr.log.1").open("a") as handle:
            handle.write("2026-01-01T00:00:01Z stdout F o\n")
        log.write_text("2026-01-01T00:00:02Z stdout F three\n")  # the reopened file
        assert [line.text for line in reader.read_new()] == ["two", "three"]
        (tmp_path / "ctr.log.tmp").write_text("2026-01-01T00:00:03Z stdout F four\n")
        (tmp_path / "ctr.log.tmp").rename(log)  # conmon's own truncation at --log-size-max
        assert [line.text for line in reader.read_new()] == ["four"]
    assert [line.text for line in read_logs(log)] == ["one", "two", "four"]  # .1, then the log
