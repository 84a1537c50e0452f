"""Unpack one OCI/Docker layer tar into a directory that overlayfs can stack as a lower layer.

Why not `tarfile.extractall`: layers need whiteouts converted to overlayfs's form (`.wh.x` becomes
a 0:0 character device `x`, `.wh..wh..opq` becomes the `trusted.overlay.opaque=y` xattr), the
DiffID must be hashed from the same single pass over the stream, and Debian's Python 3.11.2 lacks
`tarfile.data_filter`, so the path-escape checks are done here: absolute names, `..`, writes
through a symlink, and hard links whose target is outside the layer are all refused.

What is kept, as Docker keeps it when it runs as root: set-id bits (applied after the chown that
would clear them), file capabilities and other xattrs except overlay's own, and character and
block device nodes. A device node in an image grants nothing inside a container (the device
allow-list decides what a container may open); on the host the store keeps layers in a root-only
directory (`ImageStore`), so a world-readable node in a layer cannot be reached by other users.
Whiteouts are the one device node every unpacker makes: overlayfs's 0:0 character device.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib
import io
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from stackup.errors import RuntimeFailure

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX = "SCHILY.xattr."
# Overlay's own metadata must come from the unpacker, never from the archive: a forged
# `trusted.overlay.redirect` or `.origin` could make overlayfs look outside this layer.
_FORBIDDEN_XATTR = "trusted.overlay."
_CHUNK = 1 << 20


class Compression(StrEnum):
    """Layer blob encodings, recognised by magic bytes rather than trusted media types."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


def detect_compression(head: bytes) -> Compression:
    if head.startswith(b"\x1f\x8b"):
        return Compression.GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return Compression.ZSTD
    return Compression.NONE


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """What one pass over a layer blob learned.

    `digest` hashes the blob as given (what manifests list), `diff_id` the uncompressed tar (what
    image configs list); `skipped` names entries left out, e.g. devices when not running as root.
    """

    diff_id: str
    digest: str
    size: int
    compression: Compression
    skipped: tuple[str, ...] = ()


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            joined = f"{out[-1]} {diff_id}".encode()
            out.append("sha256:" + hashlib.sha256(joined).hexdigest())
    return out


def chain_id(diff_ids: Sequence[str]) -> str:
    """The ChainID of the whole stack: the cache key of the top unpacked layer."""
    if not diff_ids:
        raise ValueError("a ChainID needs at least one layer")
    return chain_ids(diff_ids)[-1]


class _HashingReader(io.RawIOBase):
    """Counts and hashes every byte read through it, so hashing costs no second pass."""

    def __init__(self, raw: IO[bytes] | io.BufferedIOBase, *, hashing: bool = True) -> None:
        super().__init__()
        self._raw = raw
        self.hash = hashlib.sha256()
        self.hashing = hashing
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer)
        data = self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        if self.hashing:
            self.hash.update(data)
        self.count += n
        return n

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest() if self.hashing else ""


def _inflate_module() -> Any:
    """ISA-L's inflate (python-isal) when installed: 2-3x zlib's speed, and gunzipping is most of
    the time a cold pull spends in the engine; else the standard library's zlib."""
    try:
        return importlib.import_module("isal.isal_zlib")
    except ImportError:
        return zlib


class _Gunzip(io.RawIOBase):
    """Gzip members read one after another (a blob may concatenate several), inflated in C: no
    `gzip.GzipFile` Python-level buffering per chunk; the CRC and size trailers are checked by
    the inflater itself (wbits 31), the DiffID by the caller."""

    def __init__(self, source: io.BufferedIOBase) -> None:
        super().__init__()
        self._source = source
        self._zlib = _inflate_module()
        self._inflater = self._zlib.decompressobj(31)
        self._pending = b""
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer)
        while not self._pending:
            if self._inflater.eof:
                rest = self._inflater.unused_data.lstrip(b"\0")  # gzip allows zero padding
                while not rest:
                    more = self._source.read(_CHUNK)
                    if not more:
                        return 0
                    rest = more.lstrip(b"\0")
                self._inflater = self._zlib.decompressobj(31)
            else:
                rest = self._inflater.unconsumed_tail or self._source.read(_CHUNK)
                if not rest:
                    if self._started:
                        raise EOFError("compressed layer ended before the end of its gzip stream")
                    return 0
            self._started = True
            self._pending = self._inflater.decompress(rest, _CHUNK)
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _decompressor(kind: Compression, source: io.BufferedIOBase) -> IO[bytes] | io.BufferedIOBase:
    if kind is Compression.GZIP:
        return io.BufferedReader(_Gunzip(source), _CHUNK)
    if kind is Compression.ZSTD:
        try:
            zstandard = importlib.import_module("zstandard")
        except ImportError as exc:
            raise RuntimeFailure("layer is zstd-compressed; install the `zstandard` package") from exc
        reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(source)
        return reader
    return source


def unpack_layer(blob: IO[bytes], dest: Path, *, privileged: bool | None = None,
                 hash_blob: bool = True) -> LayerInfo:
    """Extract the layer read from `blob` (plain, gzip or zstd tar) into the empty dir `dest`.

    `privileged` (default: running as root) allows device nodes and ownership; whiteouts always
    need it because they are device nodes. Raises RuntimeFailure on unsafe or malformed entries.
    `hash_blob=False` skips the blob's own digest (`LayerInfo.digest` is then empty) when the
    caller verified it already, as the store does for every blob it holds.
    """
    if privileged is None:
        privileged = os.geteuid() == 0
    raw = _HashingReader(blob, hashing=hash_blob)
    buffered = io.BufferedReader(raw, _CHUNK)
    kind = detect_compression(buffered.peek(4)[:4])
    plain = _HashingReader(_decompressor(kind, buffered))
    extractor = _Extractor(dest, privileged)
    try:
        with tarfile.open(fileobj=plain, mode="r|", errors="surrogateescape", bufsize=_CHUNK) as tar:
            for member in tar:
                extractor.add(tar, member)
        extractor.finish()
        plain.drain()  # the DiffID covers the end-of-archive blocks and padding too
        while buffered.read(_CHUNK):
            pass
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise RuntimeFailure(f"cannot unpack layer into {dest}: {exc}") from exc
    return LayerInfo(plain.digest, raw.digest, plain.count, kind, tuple(extractor.skipped))


def _split(name: str, what: str) -> list[str]:
    """Path components of an archive name; refuses anything that could leave the layer."""
    if name.startswith("/"):
        raise RuntimeFailure(f"unsafe layer entry: {what} {name!r} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RuntimeFailure(f"unsafe layer entry: {what} {name!r} contains '..'")
    return parts


@dataclass
class _Extractor:
    """Writes entries one at a time; directory modes and mtimes are applied at the end so that
    read-only directories can still receive their children and keep their recorded times."""

    dest: Path
    privileged: bool
    skipped: list[str] = field(default_factory=list)
    _dirs: list[tuple[Path, tarfile.TarInfo]] = field(default_factory=list)
    _safe_dirs: set[Path] = field(default_factory=set)

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = _split(member.name, "name")
        if not parts:  # "./": the layer root itself
            if member.isdir():
                self._dirs.append((self.dest, member))
            return
        parent = self._parent(parts[:-1], member.name)
        base = parts[-1]
        if base == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk, ...) has no overlay meaning
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX):]
            if hidden in ("", ".", ".."):  # `.wh...` would remove the layer's parent directory
                raise RuntimeFailure(f"unsafe layer entry: whiteout {member.name!r} names no entry")
            self._whiteout(parent / hidden, member.name)
            return
        self._write(tar, member, parent / base)

    def _parent(self, parts: list[str], name: str) -> Path:
        """Create or check each parent: a symlink on the way would redirect writes elsewhere."""
        path = self.dest
        for part in parts:
            path = path / part
            if path in self._safe_dirs:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise RuntimeFailure(f"unsafe layer entry: {name!r} writes through a symlink")
                if not stat.S_ISDIR(st.st_mode):
                    raise RuntimeFailure(f"malformed layer: parent of {name!r} is not a directory")
            self._safe_dirs.add(path)
        return path

    def _clear(self, path: Path) -> os.stat_result | None:
        """Remove what a duplicate entry replaces; returns what was there."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        self._safe_dirs.clear()  # a removed directory may come back as a symlink
        return st

    def _whiteout(self, path: Path, name: str) -> None:
        if not self.privileged:
            raise RuntimeFailure(f"whiteout {name!r} needs root (it is a 0:0 character device)")
        self._clear(path)
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        os.chown(path, 0, 0, follow_symlinks=False)

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
        if member.isdir():
            try:
                existing: os.stat_result | None = os.lstat(path)
            except FileNotFoundError:
                existing = None
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                self._clear(path)
                os.mkdir(path, 0o700)
            if existing is not None and _is_whiteout(existing):
                os.setxattr(path, OPAQUE_XATTR, b"y")  # deleted then recreated in this layer
            self._dirs.append((path, member))
            self._meta(member, path, mode_and_time=False)
            return
        if member.islnk():
            self._hardlink(member, path)
            return
        if (member.ischr() or member.isblk()) and not self.privileged:
            self.skipped.append(member.name)
            return
        if not (member.isreg() or member.issym() or member.isdev()):
            self.skipped.append(member.name)
            return
        self._clear(path)
        if member.isreg():
            source = tar.extractfile(member)
            if source is None:
                raise RuntimeFailure(f"malformed layer: no data for {member.name!r}")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with source, open(os.open(path, flags, 0o600), "wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        self._meta(member, path, mode_and_time=True)

    def _hardlink(self, member: tarfile.TarInfo, path: Path) -> None:
        """Hard links may only point at an entry already extracted in this layer, reached
        without following symlinks, so a link can never alias a host file."""
        target = self.dest
        parts = _split(member.linkname, "hard link target of")
        for index, part in enumerate(parts):
            target = target / part
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                raise RuntimeFailure(
                    f"unsafe layer entry: hard link {member.name!r} -> {member.linkname!r} "
                    "points outside the layer") from None
            if index < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                raise RuntimeFailure(
                    f"unsafe layer entry: hard link {member.name!r} -> {member.linkname!r} "
                    "goes through a symlink")
        if not parts or target == path:
            raise RuntimeFailure(f"malformed layer: hard link {member.name!r} points at itself")
        self._clear(path)
        os.link(target, path, follow_symlinks=False)

    def _meta(self, member: tarfile.TarInfo, path: Path, *, mode_and_time: bool) -> None:
        if self.privileged:
            os.chown(path, member.uid, member.gid, follow_symlinks=False)
        for key, value in member.pax_headers.items():
            if not key.startswith(_XATTR_PAX):
                continue
            name = key[len(_XATTR_PAX):]
            if name.startswith(_FORBIDDEN_XATTR):
                continue
            with contextlib.suppress(OSError):  # best effort: the fs may not support this namespace
                os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
        if mode_and_time:
            self._mode_and_time(member, path)

    def _mode_and_time(self, member: tarfile.TarInfo, path: Path) -> None:
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)  # after chown, which clears set-id bits
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def finish(self) -> None:
        """Deepest directories first, so setting a child's mtime does not disturb its parent's."""
        for path, member in reversed(self._dirs):
            if path == self.dest and self.privileged:
                os.chown(path, member.uid, member.gid)
            self._mode_and_time(member, path)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def pack_directory(source: Path, out: IO[bytes]) -> None:
    """Write `source` as an uncompressed layer tar, in sorted order so equal trees give equal DiffIDs.

    Ownership and modes are kept; user and group *names* are dropped because the numeric ids
    are what the container sees. Extended attributes are not carried (tarfile cannot read them).
    """

    def scrub(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname=".", recursive=True, filter=scrub)
