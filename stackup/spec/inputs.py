"""What a load read: the variables it consulted and the files it opened.

`stackup up` on an unchanged stack should cost next to nothing. The CLI can skip loading
entirely when it can prove the inputs are the same as last time (see `stackup/cli/fastpath.py`),
and that proof needs to know exactly which environment variables and files the result depended
on. `RecordingEnv` notes every variable looked up; a load that enumerates the whole environment
(an `include` copies it) marks itself `enumerated`, and then no such proof is attempted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path


class RecordingEnv(Mapping[str, str]):
    """A read-only view of `data` that records the keys looked up in `log`."""

    def __init__(self, data: Mapping[str, str], log: InputLog) -> None:
        self._data = dict(data)
        self._log = log

    def __getitem__(self, key: str) -> str:
        self._log.variables.add(key)
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._log.variables.add(key)
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        self._log.enumerated = True
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def unrecorded(self) -> dict[str, str]:
        """A plain copy for the result, without marking the load as depending on every variable."""
        return dict(self._data)

    def with_value(self, key: str, value: str) -> RecordingEnv:
        """A copy with `key` set (the project name the loader decides), sharing the same log."""
        return RecordingEnv({**self._data, key: value}, self._log)


@dataclass
class InputLog:
    """Variables consulted and files read during one load."""

    variables: set[str] = field(default_factory=set)
    files: set[Path] = field(default_factory=set)
    enumerated: bool = False

    def add_files(self, paths: Iterable[Path | str]) -> None:
        self.files.update(Path(p).absolute() for p in paths)


def file_digest(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist (its absence is an input too)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


@dataclass(frozen=True)
class Inputs:
    """The inputs of one load: file digests, the consulted variables' values in the process
    environment (None = unset), and whether the load can be reproduced from these alone."""

    files: Mapping[str, str | None]
    variables: Mapping[str, str | None]
    complete: bool

    @classmethod
    def from_log(cls, log: InputLog, environ: Mapping[str, str]) -> Inputs:
        return cls(
            files={str(p): file_digest(p) for p in sorted(log.files)},
            variables={k: environ.get(k) for k in sorted(log.variables)},
            complete=not log.enumerated,
        )
