"""The parts of images in and out that need no engine: apt sources, slimming, upper -> layer,
save -> load between two stores, history pairing."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.engine.images.aptsources import mirror_for, read_sources
from stackup.runtime.engine.images.debian import DebianBase, slim_tar
from stackup.runtime.engine.images.diff import pack_upper
from stackup.runtime.engine.images.history import MISSING, image_history
from stackup.runtime.engine.images.layers import OPAQUE_XATTR, unpack_layer
from stackup.runtime.engine.images.save import write_archive
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.paths import EnginePaths

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are device nodes: root only")


def test_apt_sources_both_forms(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian/ bookworm-security main\n")
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\n  bookworm-updates\n"
        "Components: main\n\nTypes: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: trixie\n")
    (tmp_path / "sources.list.d/other.list.disabled").write_text("deb http://ignored.example trixie main\n")
    sources = read_sources(tmp_path)
    assert [(s.uri, s.suites) for s in sources] == [
        ("http://one.example/debian/", ("bookworm-security",)),
        ("http://mirror.example/debian", ("bookworm", "bookworm-updates")),
    ]
    assert sources[1].where.endswith("debian.sources:1")
    assert mirror_for("bookworm", tmp_path) == "http://mirror.example/debian"
    with pytest.raises(NotFound, match=r"trixie.*mirror\.example"):
        mirror_for("trixie", tmp_path)


def test_base_names() -> None:
    assert DebianBase.parse("debian:bookworm") == DebianBase("bookworm", slim=False)
    assert DebianBase.parse("debian:bookworm-slim") == DebianBase("bookworm", slim=True)
    assert DebianBase.parse("debian:bookworm-slim").name == "debian:bookworm-slim"  # type: ignore[union-attr]
    assert DebianBase.parse("ubuntu:jammy") is None and DebianBase.parse("debian:../x") is None


def _tar(path: Path, entries: list[tuple[str, bytes | None, str]]) -> None:
    """(name, data or None for a directory, hard link target or "")."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.LNKTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_slim_drops_docs_keeps_copyrights_and_rescues_hard_links(tmp_path: Path) -> None:
    _tar(tmp_path / "full.tar", [
        ("./usr/share/doc", None, ""), ("./usr/share/doc/bash/README", b"readme", ""),
        ("./usr/share/doc/bash/copyright", b"(c)", ""), ("./usr/share/man/man1/bash.1.gz", b"man", ""),
        ("./usr/share/locale/de/LC_MESSAGES/bash.mo", b"mo", ""), ("./usr/bin/bash", b"ELF", ""),
        ("./usr/bin/readme-too", None, "./usr/share/doc/bash/README"),
    ])
    slim_tar(tmp_path / "full.tar", tmp_path / "slim.tar")
    with tarfile.open(tmp_path / "slim.tar") as tar:
        names = tar.getnames()
        rescued = tar.extractfile("./usr/bin/readme-too")
        assert rescued is not None and rescued.read() == b"readme"
        dpkg = tar.extractfile("./etc/dpkg/dpkg.cfg.d/slim")
        assert dpkg is not None and b"path-exclude /usr/share/man/*" in dpkg.read()
    assert "./usr/share/doc/bash/copyright" in names and "./usr/share/doc" in names
    assert not any(n.endswith(("README", "bash.1.gz", "bash.mo")) for n in names)


@needs_root
def test_upper_becomes_a_layer_that_unpacks_to_the_same_upper(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/new").write_text("new")
    os.link(upper / "etc/new", upper / "etc/alias")
    os.mknod(upper / "etc/gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    (upper / "cache").mkdir()
    os.setxattr(upper / "cache", OPAQUE_XATTR, b"y")
    (upper / "cache/fresh").write_text("f")
    (upper / "bin").mkdir()
    (upper / "bin/tool").write_bytes(b"#!/bin/sh\n")
    (upper / "bin/tool").chmod(0o4755)
    blob = io.BytesIO()
    pack_upper(upper, blob)
    with tarfile.open(fileobj=io.BytesIO(blob.getvalue())) as tar:
        names = tar.getnames()
        assert tar.getmember("etc/alias").islnk() or tar.getmember("etc/new").islnk()
    assert "etc/.wh.gone" in names and "cache/.wh..wh..opq" in names and "etc/gone" not in names
    again = tmp_path / "again"
    again.mkdir()
    unpack_layer(io.BytesIO(blob.getvalue()), again)
    gone = os.lstat(again / "etc/gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(again / "cache", OPAQUE_XATTR) == b"y"
    assert stat.S_IMODE(os.stat(again / "bin/tool").st_mode) == 0o4755
    assert os.stat(again / "etc/new").st_nlink == 2
    second = io.BytesIO()
    pack_upper(upper, second)
    assert second.getvalue() == blob.getvalue(), "an unchanged upper packs to the same bytes"


@needs_root
def test_upper_with_a_redirected_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "upper/moved").mkdir(parents=True)
    os.setxattr(tmp_path / "upper/moved", "trusted.overlay.redirect", b"/old")
    with pytest.raises(RuntimeFailure, match=r"/moved.*redirect"):
        pack_upper(tmp_path / "upper", io.BytesIO())


@needs_root
def test_save_then_load_into_another_store_keeps_the_id(tmp_path: Path) -> None:
    first = ImageStore(EnginePaths(tmp_path / "one"))
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/os-release").write_text("ID=test\n")
    base = first.import_rootfs(rootfs, "units/base:1", config={"Cmd": ["sh"]})
    layer = tmp_path / "layer.tar"
    _tar(layer, [("etc/added", b"added", "")])
    top = first.add_layer(base.id, layer, "units/top:1", created_by="sh -c add", comment="c1")
    assert top.diff_ids[:1] == base.diff_ids and len(top.diff_ids) == 2
    archive = io.BytesIO()
    write_archive(first, ["units/top:1", base.id], archive)
    with tarfile.open(fileobj=io.BytesIO(archive.getvalue())) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        assert {"oci-layout", "repositories"} <= set(tar.getnames())
    assert [m["RepoTags"] for m in manifest] == [["units/top:1"], ["units/base:1"]]
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [
        "docker.io/units/top:1", "docker.io/units/base:1"]
    (tmp_path / "saved.tar").write_bytes(archive.getvalue())
    second = ImageStore(EnginePaths(tmp_path / "two"))
    loaded = second.import_archive(tmp_path / "saved.tar")
    assert [i.id for i in loaded] == [top.id, base.id]
    assert (second.layer_dirs(second.get("units/top:1"))[-1] / "etc/added").read_text() == "added"
    history = image_history(second, "units/top:1")
    assert [(h.id, h.created_by, h.comment) for h in history] == [
        (top.id, "sh -c add", "c1"), (MISSING, "stackup image import rootfs", "")]
    assert history[0].tags == ("units/top:1",) and history[0].size == top.layers[1].size
