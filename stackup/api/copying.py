"""`stackup cp` both ways, as `docker cp` behaves, over any runtime's tar-stream copy.

Into a container: a local file or directory goes *into* the destination when it is an existing
directory (or ends with `/`), else it is written under the destination's name (a new name or a
file replaced). Out of a container: the same rule on the local side; `-` streams the tar itself.
Archives from a container are extracted with tarfile's `data` filter: no absolute paths, no `..`,
no links out of the destination, no device nodes.
"""

from __future__ import annotations

import io
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from stackup.errors import NotFound, RuntimeFailure, UsageError
from stackup.runtime.base import Backend


def _tar_of(source: Path, name: str) -> IO[bytes]:
    buffer = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 (returned to the caller)
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(source, arcname=name)
    buffer.seek(0)
    return buffer


def copy_in(backend: Backend, container_id: str, source: Path, dest: str) -> None:
    """Copy the local `source` to `dest` in the container."""
    if not source.exists() and not source.is_symlink():
        raise NotFound(f"{source}: no such file or directory")
    if dest.endswith("/") or dest in ("", "."):
        backend.copy_to(container_id, dest or "/", _tar_of(source, source.name))
        return
    try:
        backend.copy_to(container_id, dest, _tar_of(source, source.name))
    except RuntimeFailure:  # not an existing directory: `dest` names the copy itself
        parent, name = posixpath.split(dest.rstrip("/"))
        backend.copy_to(container_id, parent or "/", _tar_of(source, name))


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self.pending:
            try:
                self.pending = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def copy_out(backend: Backend, container_id: str, source: str, dest: Path | None) -> Iterator[bytes] | None:
    """Copy `source` from the container to the local `dest`; with `dest` None, return the tar."""
    chunks = backend.copy_from(container_id, source)
    if dest is None:
        return chunks
    stream = io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 16)
    if dest.is_dir():
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            tar.extractall(dest, filter="data")
        return None
    if not dest.parent.is_dir():
        raise UsageError(f"{dest.parent}: no such directory")
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".stackup-cp-") as scratch:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            tar.extractall(scratch, filter="data")
        entries = list(Path(scratch).iterdir())
        if len(entries) != 1:
            raise NotFound(f"{source}: the container sent {len(entries)} entries, expected one")
        (top,) = entries
        if dest.exists() and not dest.is_dir():
            dest.unlink()
        shutil.move(str(top), dest)
    return None
