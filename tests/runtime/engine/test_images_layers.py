"""Layer unpacking: whiteouts, path-escape refusal, metadata, DiffID and ChainID."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.images.layers import (
    OPAQUE_XATTR,
    Compression,
    LayerInfo,
    chain_id,
    chain_ids,
    pack_directory,
    unpack_layer,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts and ownership need root")


@dataclass
class Entry:
    """A tar entry for hand-made layers."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    link: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    pax: dict[str, str] = field(default_factory=dict)


def make_tar(*entries: Entry) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, e.mtime
            info.linkname = e.link
            info.pax_headers = e.pax
            if e.kind == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def unpack(data: bytes, dest: Path, **kwargs: bool) -> LayerInfo:
    dest.mkdir(exist_ok=True)
    return unpack_layer(io.BytesIO(data), dest, **kwargs)


def test_diff_id_is_sha256_of_uncompressed_stream(tmp_path: Path) -> None:
    raw = make_tar(Entry("etc/", tarfile.DIRTYPE, mode=0o755), Entry("etc/motd", data=b"hi\n"))
    info = unpack(gzip.compress(raw), tmp_path / "l")
    assert info.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert info.compression is Compression.GZIP
    assert (tmp_path / "l/etc/motd").read_bytes() == b"hi\n"


def test_blob_digest_covers_the_compressed_bytes(tmp_path: Path) -> None:
    blob = gzip.compress(make_tar(Entry("a", data=b"x")), mtime=0)
    info = unpack_layer(io.BytesIO(blob), _mk(tmp_path / "l"))
    assert info.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert info.size == len(gzip.decompress(blob))


def _mk(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_chain_ids_follow_the_image_spec() -> None:
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert chain_ids([a, b, c]) == [a, ab, abc]
    assert chain_id([a]) == a
    with pytest.raises(ValueError):
        chain_id([])


@needs_root
def test_whiteouts_become_char_devices_and_opaque_xattrs(tmp_path: Path) -> None:
    dest = tmp_path / "l"
    unpack(make_tar(
        Entry("gone/.wh..wh..opq"),
        Entry("etc/.wh.passwd"),
        Entry(".wh..wh.plnk"),
    ), dest)
    whiteout = os.lstat(dest / "etc/passwd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert (whiteout.st_uid, whiteout.st_gid) == (0, 0)
    assert os.getxattr(dest / "gone", OPAQUE_XATTR) == b"y"
    assert not (dest / ".wh..wh.plnk").exists()


@needs_root
def test_metadata_is_kept(tmp_path: Path) -> None:
    dest = tmp_path / "l"
    unpack(make_tar(
        Entry("srv/", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000, mtime=1_500_000_000),
        Entry("srv/run.sh", data=b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=50,
              pax={"SCHILY.xattr.user.origin": "layer", "SCHILY.xattr.trusted.overlay.redirect": "/x"}),
        Entry("srv/link", tarfile.SYMTYPE, link="/etc/passwd"),
        Entry("srv/hard", tarfile.LNKTYPE, link="srv/run.sh"),
        Entry("srv/fifo", tarfile.FIFOTYPE, mode=0o600),
    ), dest)
    st = os.stat(dest / "srv/run.sh")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (1000, 50)
    assert st.st_mtime == 1_600_000_000 and st.st_nlink == 2
    assert os.getxattr(dest / "srv/run.sh", "user.origin") == b"layer"
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "srv/run.sh")
    srv = os.stat(dest / "srv")
    assert stat.S_IMODE(srv.st_mode) == 0o750 and srv.st_mtime == 1_500_000_000
    assert os.readlink(dest / "srv/link") == "/etc/passwd"  # absolute symlinks are fine: never followed
    assert stat.S_ISFIFO(os.lstat(dest / "srv/fifo").st_mode)


def test_devices_are_skipped_when_not_privileged(tmp_path: Path) -> None:
    info = unpack_layer(io.BytesIO(make_tar(Entry("dev/null", tarfile.CHRTYPE))), _mk(tmp_path / "l"),
                        privileged=False)
    assert info.skipped == ("dev/null",)
    assert not (tmp_path / "l/dev/null").exists()


@needs_root
def test_devices_are_created_as_root(tmp_path: Path) -> None:
    dest = tmp_path / "l"
    unpack(make_tar(Entry("dev/zero", tarfile.CHRTYPE)), dest)
    assert stat.S_ISCHR(os.lstat(dest / "dev/zero").st_mode)


def test_whiteout_refused_when_not_privileged(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="needs root"):
        unpack_layer(io.BytesIO(make_tar(Entry(".wh.x"))), _mk(tmp_path / "l"), privileged=False)


@needs_root
def test_whiteout_then_directory_in_one_layer_is_opaque(tmp_path: Path) -> None:
    dest = tmp_path / "l"
    entries = (Entry(".wh.cache"), Entry("cache/", tarfile.DIRTYPE), Entry("cache/new", data=b"1"))
    unpack(make_tar(*entries), dest)
    assert os.getxattr(dest / "cache", OPAQUE_XATTR) == b"y"
    assert (dest / "cache/new").read_bytes() == b"1"


@pytest.mark.parametrize(("entries", "message"), [
    ((Entry("/etc/passwd", data=b"x"),), "absolute"),
    ((Entry("../escape", data=b"x"),), r"'\.\.'"),
    ((Entry("a/../../escape", data=b"x"),), r"'\.\.'"),
    ((Entry("evil", tarfile.SYMTYPE, link="/tmp"), Entry("evil/owned", data=b"x")), "through a symlink"),
    ((Entry("up", tarfile.SYMTYPE, link=".."), Entry("up/owned", data=b"x")), "through a symlink"),
    ((Entry("passwd", tarfile.LNKTYPE, link="/etc/passwd"),), "absolute"),
    ((Entry("passwd", tarfile.LNKTYPE, link="../../etc/passwd"),), r"'\.\.'"),
    ((Entry("missing", tarfile.LNKTYPE, link="nowhere"),), "outside the layer"),
    ((Entry("d", tarfile.SYMTYPE, link="/etc"), Entry("h", tarfile.LNKTYPE, link="d/passwd")),
     "through a symlink"),
])
def test_path_escapes_are_refused(tmp_path: Path, entries: tuple[Entry, ...], message: str) -> None:
    outside = tmp_path / "escape"
    with pytest.raises(RuntimeFailure, match=message):
        unpack_layer(io.BytesIO(make_tar(*entries)), _mk(tmp_path / "root" / "l"), privileged=False)
    assert not outside.exists()
    assert not (Path("/tmp") / "owned").exists()


def test_duplicate_entries_last_one_wins(tmp_path: Path) -> None:
    dest = tmp_path / "l"
    unpack(make_tar(Entry("f", data=b"old"), Entry("f", data=b"new")), dest, privileged=False)
    assert (dest / "f").read_bytes() == b"new"


def test_garbage_is_a_runtime_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="cannot unpack"):
        unpack_layer(io.BytesIO(gzip.compress(b"not a tar" * 100)), _mk(tmp_path / "l"))


def test_pack_directory_round_trips_and_is_reproducible(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin/tool").write_bytes(b"#!/bin/sh\n")
    (src / "bin/tool").chmod(0o755)
    (src / "bin/alias").symlink_to("tool")
    blobs = []
    for _ in range(2):
        out = io.BytesIO()
        pack_directory(src, out)
        blobs.append(out.getvalue())
    assert blobs[0] == blobs[1]
    dest = tmp_path / "dest"
    unpack(blobs[0], dest, privileged=os.geteuid() == 0)
    assert (dest / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    assert os.readlink(dest / "bin/alias") == "tool"
    assert stat.S_IMODE(os.stat(dest / "bin/tool").st_mode) == 0o755
