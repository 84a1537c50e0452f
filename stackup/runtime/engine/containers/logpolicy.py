"""How much log a container may keep: Docker's `json-file`/`local` options on our k8s-file logs.

Docker's json-file driver takes `max-size` (`10m`, `1g`, `512k`, bytes) and `max-file` (default
1): with one file the log is cut when it reaches `max-size`; with N files it is rotated to
`<log>.1` ... `<log>.N-1`, the oldest dropped. `local` defaults to 20m x 5. Docker keeps json-file
unbounded by default; this engine does not, so that a chatty container cannot fill the disk:
json-file without options gets 10m x 3 (`DEFAULT_MAX_SIZE`, `DEFAULT_MAX_FILE`).

How it is done: conmon has `--log-size-max`, but it *truncates* (it replaces the file with an
empty one when a write would cross the limit, and its byte counter survives a reopen), so it is
used only for `max-file: 1`, where truncation is exactly Docker's behaviour. For N > 1 the engine
rotates (`logrotate.py`): it renames the files and asks conmon, through the control fifo in the
bundle, to reopen its log. Driver `none` keeps no log at all; other drivers (syslog, journald,
fluentd, ...) are not available here and are refused at create, naming the driver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from stackup.errors import RuntimeFailure

DEFAULT_MAX_SIZE = 10 << 20
DEFAULT_MAX_FILE = 3
LOCAL_MAX_SIZE = 20 << 20
LOCAL_MAX_FILE = 5
MIN_MAX_SIZE = 4096
"""Smaller than a page of log would rotate on every line; Docker has no floor, we have a small one."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class LogDriver(StrEnum):
    JSON_FILE = "json-file"
    LOCAL = "local"
    K8S_FILE = "k8s-file"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class LogPolicy:
    """`driver` none: no log; otherwise at most `max_file` files of about `max_size` bytes each."""

    driver: LogDriver
    max_size: int
    max_file: int

    @property
    def keeps_log(self) -> bool:
        return self.driver is not LogDriver.NONE

    @property
    def conmon_truncates(self) -> bool:
        """One file: conmon's own `--log-size-max` does it (truncation, as Docker's max-file 1)."""
        return self.keeps_log and self.max_file == 1


def parse_size(text: str, where: str = "max-size") -> int:
    """`10m` -> 10485760 (Docker's units: k, m, g, t are powers of 1024; a bare number is bytes)."""
    match = _SIZE.match(text)
    if match is None:
        raise RuntimeFailure(f"logging option {where}: {text!r} is not a size (e.g. 512k, 10m, 1g)")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < MIN_MAX_SIZE:
        raise RuntimeFailure(f"logging option {where}: {text!r} is below the minimum of {MIN_MAX_SIZE} bytes")
    return size


def policy(driver: str | None, options: dict[str, str]) -> LogPolicy:
    """The policy for a service's `logging:` (driver and options as Compose writes them)."""
    try:
        kind = LogDriver(driver or LogDriver.JSON_FILE)
    except ValueError:
        known = ", ".join(d.value for d in LogDriver)
        raise RuntimeFailure(
            f"logging driver {driver!r} is not available on this engine (use {known})"
        ) from None
    if kind is LogDriver.NONE:
        return LogPolicy(kind, 0, 0)
    default_size, default_files = (
        (LOCAL_MAX_SIZE, LOCAL_MAX_FILE) if kind is LogDriver.LOCAL else (DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE)
    )
    unknown = sorted(set(options) - {"max-size", "max-file", "compress", "mode", "max-buffer-size", "tag"})
    if unknown:
        raise RuntimeFailure(
            f"logging options {', '.join(unknown)} are not supported (use max-size, max-file)"
        )
    size_text, files_text = options.get("max-size"), options.get("max-file")
    max_size = parse_size(size_text) if size_text else default_size
    if files_text:
        try:
            max_file = int(files_text)
        except ValueError:
            raise RuntimeFailure(f"logging option max-file: {files_text!r} is not a whole number") from None
        if max_file < 1:
            raise RuntimeFailure(f"logging option max-file: {files_text!r} must be at least 1")
    else:
        # Docker: max-size alone keeps one file; no options at all get this engine's default.
        max_file = 1 if size_text and kind is not LogDriver.LOCAL else default_files
    return LogPolicy(kind, max_size, max_file)


def log_files(current: Path) -> list[Path]:
    """The log's files, oldest first: `<log>.N`, ..., `<log>.1`, `<log>` (those that exist)."""
    rotated: list[tuple[int, Path]] = []
    if current.parent.is_dir():
        prefix = current.name + "."
        for entry in current.parent.iterdir():
            suffix = entry.name[len(prefix) :] if entry.name.startswith(prefix) else ""
            if suffix.isdigit():
                rotated.append((int(suffix), entry))
    files = [path for _, path in sorted(rotated, reverse=True)]
    return [*files, current] if current.exists() else files
