"""Hostile and unusual layers imported through the store, as `docker load` would meet them.

Each layer is a hand-made tar inside a hand-made `docker save` archive, so the whole import path
runs (blob copy, digest check, unpack, ChainID, record): escapes are refused with the member
named and leave no layer or record behind; device nodes, set-id bits, whiteouts and opaque
directories come out as Docker keeps them when it runs as root.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.images.archive import host_architecture
from stackup.runtime.engine.images.layers import OPAQUE_XATTR
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.paths import EnginePaths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the store unpacks layers as root")


@dataclass(frozen=True)
class E:
    """One tar entry of a hand-made layer."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    link: str = ""
    mode: int = 0o644
    uid: int = 0
    dev: tuple[int, int] = (0, 0)


def layer(*entries: E) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.mode, info.uid, info.linkname = e.kind, e.mode, e.uid, e.link
            info.devmajor, info.devminor = e.dev
            if e.kind == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_archive(path: Path, ref: str, *layers: bytes) -> Path:
    """A `docker save` tar of one image made of `layers`, lowest first."""
    config = json.dumps({
        "architecture": host_architecture(), "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha(blob) for blob in layers]},
    }).encode()
    files = {f"{_sha(config)[7:]}.json": config}
    names = []
    for blob in layers:
        names.append(f"{_sha(blob)[7:]}/layer.tar")
        files[names[-1]] = blob
    files["manifest.json"] = json.dumps(
        [{"Config": f"{_sha(config)[7:]}.json", "RepoTags": [ref], "Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(EnginePaths(tmp_path / "root"))


def load(store: ImageStore, tmp_path: Path, *layers: bytes) -> Path:
    """Import, return the top layer's unpacked directory."""
    (image,) = store.import_archive(docker_archive(tmp_path / "image.tar", "safety/test:1", *layers))
    return store.layer_dirs(image)[-1]


BASE = layer(E("etc/", tarfile.DIRTYPE, mode=0o755), E("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
             E("cache/", tarfile.DIRTYPE, mode=0o755), E("cache/a", data=b"a"), E("cache/b", data=b"b"))


@pytest.mark.parametrize(("entries", "member", "why"), [
    ((E("/etc/shadow", data=b"x"),), "/etc/shadow", "absolute path"),
    ((E("../escape", data=b"x"),), "../escape", "'..'"),
    ((E("a/../../escape", data=b"x"),), "a/../../escape", "'..'"),
    ((E("out", tarfile.SYMTYPE, link="/"), E("out/tmp/owned", data=b"x")), "out/tmp/owned", "symlink"),
    ((E("up", tarfile.SYMTYPE, link="../../.."), E("up/owned", data=b"x")), "up/owned", "symlink"),
    ((E("shadow", tarfile.LNKTYPE, link="/etc/shadow"),), "/etc/shadow", "absolute path"),
    ((E("shadow", tarfile.LNKTYPE, link="../../../etc/shadow"),), "../../../etc/shadow", "'..'"),
    ((E("shadow", tarfile.LNKTYPE, link="etc/shadow"),), "shadow", "outside the layer"),
    ((E("etc2", tarfile.SYMTYPE, link="/etc"), E("pw", tarfile.LNKTYPE, link="etc2/passwd")),
     "pw", "symlink"),
    ((E(".wh..."),), ".wh...", "names no entry"),
    ((E("etc/.wh."),), "etc/.wh.", "names no entry"),
], ids=["absolute", "dotdot", "dotdot-deep", "symlink-root", "symlink-up", "hardlink-absolute",
        "hardlink-dotdot", "hardlink-missing", "hardlink-via-symlink", "whiteout-dotdot", "whiteout-empty"])
def test_escapes_are_refused_naming_the_member(
    store: ImageStore, tmp_path: Path, entries: tuple[E, ...], member: str, why: str
) -> None:
    before = sorted(p.name for p in store.paths.layers.iterdir())
    with pytest.raises(RuntimeFailure, match="unsafe layer entry") as refused:
        load(store, tmp_path, layer(*entries))
    assert repr(member) in str(refused.value) and why in str(refused.value)
    assert sorted(p.name for p in store.paths.layers.iterdir()) == before  # no layer, no staging dir
    assert list(store.paths.image_records.iterdir()) == []
    assert store.paths.layers.is_dir() and store.paths.images.is_dir()
    assert not Path("/tmp/owned").exists() and not (tmp_path / "escape").exists()


def test_store_is_root_only(store: ImageStore) -> None:
    assert stat.S_IMODE(store.paths.images.stat().st_mode) == 0o700


def test_device_nodes_are_kept_as_docker_does_as_root(store: ImageStore, tmp_path: Path) -> None:
    top = load(store, tmp_path, layer(
        E("dev/", tarfile.DIRTYPE, mode=0o755),
        E("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        E("dev/loop9", tarfile.BLKTYPE, mode=0o660, dev=(7, 9)),
        E("dev/pipe", tarfile.FIFOTYPE, mode=0o600)))
    null, loop = os.lstat(top / "dev/null"), os.lstat(top / "dev/loop9")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_ISBLK(loop.st_mode) and (os.major(loop.st_rdev), os.minor(loop.st_rdev)) == (7, 9)
    assert stat.S_IMODE(null.st_mode) == 0o666 and stat.S_ISFIFO(os.lstat(top / "dev/pipe").st_mode)


def test_setuid_and_setgid_bits_survive_the_chown(store: ImageStore, tmp_path: Path) -> None:
    top = load(store, tmp_path, layer(
        E("bin/", tarfile.DIRTYPE, mode=0o755),
        E("bin/su", data=b"\x7fELF", mode=0o4755, uid=0),
        E("bin/wall", data=b"\x7fELF", mode=0o2755, uid=1000),
        E("bin/shared", tarfile.DIRTYPE, mode=0o3777)))
    assert stat.S_IMODE(os.stat(top / "bin/su").st_mode) == 0o4755
    wall = os.stat(top / "bin/wall")
    assert stat.S_IMODE(wall.st_mode) == 0o2755 and wall.st_uid == 1000
    assert stat.S_IMODE(os.stat(top / "bin/shared").st_mode) == 0o3777


def test_whiteouts_and_opaque_dirs_over_a_base(store: ImageStore, tmp_path: Path) -> None:
    top = load(store, tmp_path, BASE, layer(
        E("etc/.wh.passwd"), E("cache/.wh..wh..opq"), E("cache/c", data=b"c")))
    passwd = os.lstat(top / "etc/passwd")
    assert stat.S_ISCHR(passwd.st_mode) and passwd.st_rdev == 0
    assert os.getxattr(top / "cache", OPAQUE_XATTR) == b"y"
    assert sorted(os.listdir(top / "cache")) == ["c"]
    assert not any(name.startswith(".wh.") for _, dirs, files in os.walk(top) for name in dirs + files)


def test_symlinks_may_point_anywhere_but_are_never_followed(store: ImageStore, tmp_path: Path) -> None:
    top = load(store, tmp_path, layer(
        E("etc/", tarfile.DIRTYPE, mode=0o755),
        E("etc/shadow", tarfile.SYMTYPE, link="/etc/shadow"),
        E("etc/shadow", data=b"replaced, not written through")))
    assert (top / "etc/shadow").read_bytes() == b"replaced, not written through"
    assert not (top / "etc/shadow").is_symlink()
