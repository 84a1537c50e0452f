"""An overlay upper dir -> a layer tar: whiteouts and opaque directories in the OCI form, and the
store's unpacker reading it back to the same overlay form (the round trip a build step's layer
and a later `save`/`load` of the image take)."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from stackup.runtime.engine.builder.snapshot import OPAQUE_XATTR, is_empty, write_layer_tar
from stackup.runtime.engine.images.layers import unpack_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are 0:0 device nodes: root only")


def _upper(tmp_path: Path) -> Path:
    upper = tmp_path / "upper"
    (upper / "etc" / "conf.d").mkdir(parents=True)
    (upper / "etc" / "conf.d" / "new.conf").write_text("x=1\n")
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "var").mkdir()
    os.setxattr(upper / "var", OPAQUE_XATTR, b"y")
    (upper / "var" / "only").write_text("fresh\n")
    (upper / "link").symlink_to("/etc/conf.d/new.conf")
    os.link(upper / "var" / "only", upper / "hard")
    return upper


def test_upper_dir_becomes_an_oci_layer(tmp_path: Path) -> None:
    upper = _upper(tmp_path)
    out = tmp_path / "layer.tar"
    write_layer_tar(upper, out)
    with tarfile.open(out) as tar:
        names = {m.name: m for m in tar.getmembers()}
    assert "etc/.wh.gone" in names and "etc/gone" not in names
    assert "var/.wh..wh..opq" in names and "var/only" in names
    assert names["link"].issym() and names["link"].linkname == "/etc/conf.d/new.conf"
    assert names["hard"].islnk() or names["var/only"].islnk()
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with open(out, "rb") as blob:
        unpack_layer(blob, unpacked)
    gone = os.lstat(unpacked / "etc" / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(unpacked / "var", OPAQUE_XATTR) == b"y"
    assert (unpacked / "etc" / "conf.d" / "new.conf").read_text() == "x=1\n"


def test_same_tree_same_digest_and_empty_detection(tmp_path: Path) -> None:
    upper = _upper(tmp_path)
    one, two = tmp_path / "1.tar", tmp_path / "2.tar"
    write_layer_tar(upper, one)
    write_layer_tar(upper, two)
    assert one.read_bytes() == two.read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert is_empty(empty) and not is_empty(upper) and is_empty(tmp_path / "missing")
