"""The seam between the registry client and a store: blob sinks, writers, progress, digests.

A store implements `BlobSink` (the engine's content store; `sinks.DirectorySink` for a directory).
The client hashes every byte it hands to a `BlobWriter` and calls `commit` only when size and
digest verified, `abort` otherwise, so a store never sees an unverified blob under its digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class BlobWriter(Protocol):
    """Receives one blob's bytes; `commit` is called only after they verified, else `abort`."""

    def write(self, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class BlobSink(Protocol):
    """Where pulled blobs go: the engine's content store, or a directory (`DirectorySink`)."""

    def has(self, digest: str) -> bool: ...

    def read(self, digest: str) -> bytes:
        """A stored blob's bytes (used for the small config, so a warm pull downloads no blob)."""
        ...

    def open_writer(self, digest: str, size: int, media_type: str) -> BlobWriter: ...


class BlobState(StrEnum):
    """`DONE` is reported once the blob is verified and committed to the sink; since the config
    (and so every DiffID) is known before any layer downloads, a store can unpack each layer as
    soon as its `DONE` arrives, in any order, overlapping unpacking with the other downloads."""

    EXISTS = "exists"
    DOWNLOADING = "downloading"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class BlobProgress:
    """One progress report; `done`/`total` are bytes of this blob."""

    digest: str
    media_type: str
    state: BlobState
    done: int
    total: int


Progress = Callable[[BlobProgress], None]
"""Called from the download threads (several at once): keep it cheap and thread-safe."""


def hasher_for(digest: str) -> hashlib._Hash:
    return hashlib.new(digest.partition(":")[0])


def compute_digest(data: bytes, like: str = "sha256:") -> str:
    algorithm = like.partition(":")[0]
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
