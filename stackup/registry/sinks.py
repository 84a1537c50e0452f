"""Blob sinks and sources on plain directories, and DiffID verification for layer blobs.

`DirectorySink` keeps blobs as `ROOT/blobs/<algorithm>/<hex>` (the OCI image layout's blob tree):
the benchmark pulls into it, tests inspect it, and it shows the contract a store must keep:
bytes go to a private temporary file and appear under their digest only on `commit` (`BlobFile`,
which the engine's store sink uses too).
`DirectorySource` serves the same tree to `push`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from stackup.registry.errors import DigestMismatch, RegistryError
from stackup.registry.media import Compression

_CHUNK = 1 << 20
PARTIAL_PREFIX = ".partial-"


def blob_path(root: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return root / "blobs" / algorithm / encoded


class BlobFile:
    """A blob being written: a private temporary file next to `target` that becomes the blob only
    on `commit` (an atomic rename), or disappears on `abort`. The one blob writer of the project:
    `DirectorySink` and the engine's store sink both hand it out; `on_done` runs after either."""

    def __init__(self, target: Path, on_done: Callable[[], None] | None = None) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self._target = target
        self._on_done = on_done
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
        self._tmp = Path(name)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)

    def commit(self) -> None:
        assert self._file is not None
        try:
            self._file.close()
            self._file = None
            os.replace(self._tmp, self._target)
        finally:
            self._finish()

    def abort(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._tmp.unlink(missing_ok=True)
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._on_done is not None:
            done, self._on_done = self._on_done, None
            done()


class DirectorySink:
    """A content-addressed directory; `commit` renames a verified blob into place atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def has(self, digest: str) -> bool:
        return blob_path(self.root, digest).is_file()

    def read(self, digest: str) -> bytes:
        return blob_path(self.root, digest).read_bytes()

    def open_writer(self, digest: str, size: int, media_type: str) -> BlobFile:
        return BlobFile(blob_path(self.root, digest))

    def partials(self) -> list[Path]:
        """Temporary files left behind (there must never be any after a pull returns or raises)."""
        blobs = self.root / "blobs"
        return sorted(blobs.rglob(PARTIAL_PREFIX + "*")) if blobs.is_dir() else []


class DirectorySource:
    """Blobs for `push`, from a directory laid out as `DirectorySink` writes it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def open(self, digest: str) -> Iterator[IO[bytes]]:
        try:
            with open(blob_path(self.root, digest), "rb") as blob:
                yield blob
        except FileNotFoundError as exc:
            raise RegistryError(f"blob {digest} is not in {self.root}; cannot push it") from exc


def _decompressed(stream: IO[bytes], compression: Compression) -> IO[bytes]:
    if compression is Compression.GZIP:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    if compression is Compression.ZSTD:
        zstandard = importlib.import_module("zstandard")
        reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(stream)
        return reader
    return stream


def diff_id(stream: IO[bytes], compression: Compression) -> str:
    """sha256 of the uncompressed tar: what an image config's `rootfs.diff_ids` lists."""
    hasher = hashlib.sha256()
    plain = _decompressed(stream, compression)
    while chunk := plain.read(_CHUNK):
        hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def verify_diff_ids(root: Path, layers: Sequence[tuple[str, Compression, str]]) -> None:
    """Check each (blob digest, compression, expected DiffID) stored under `root`.

    The engine's store computes DiffIDs while unpacking; this is for sinks that keep blobs packed.
    """
    for digest, compression, expected in layers:
        with open(blob_path(root, digest), "rb") as blob:
            found = diff_id(blob, compression)
        if found != expected:
            raise DigestMismatch(f"layer {digest} unpacks to {found}, the image config says {expected}; "
                                 "the image is damaged: push it again")
