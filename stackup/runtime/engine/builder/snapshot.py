"""A step's overlay upper dir -> a layer tar (OCI whiteouts), ready for `ImageStore.adopt_layer`.

The upper dir of an overlay mount is already a layer in overlayfs's own form: a deleted path is a
0:0 character device, a directory replaced as a whole carries `trusted.overlay.opaque=y`. The
store keeps unpacked layers in exactly that form, so the upper dir itself becomes the unpacked
layer (moved, not copied) and only the blob needs writing: whiteouts become `.wh.<name>` entries
and an opaque directory gets a `.wh..wh..opq` entry, as the OCI image spec defines them. Names are
walked in sorted order so the same tree gives the same DiffID. (This kernel runs overlayfs with
index, metacopy and redirect_dir off, so the upper dir holds no other overlay metadata.)
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

OPAQUE_XATTR = "trusted.overlay.opaque"


def is_empty(upper: Path) -> bool:
    try:
        return not any(os.scandir(upper))
    except FileNotFoundError:
        return True


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def write_layer_tar(upper: Path, out: Path) -> None:
    """Write `upper` as an uncompressed layer tar at `out`."""
    with open(out, "wb") as stream, tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _walk(tar, str(upper), "")


def _add(tar: tarfile.TarFile, full: str, name: str) -> None:
    info = tar.gettarinfo(full, arcname=name)
    info.uname = info.gname = ""
    if info.isreg():
        with open(full, "rb") as data:
            tar.addfile(info, data)
    else:
        tar.addfile(info)


def _walk(tar: tarfile.TarFile, root: str, rel: str) -> None:
    directory = os.path.join(root, rel) if rel else root
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        arc = f"{rel}/{name}" if rel else name
        st = os.lstat(full)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            marker = tarfile.TarInfo(f"{rel}/.wh.{name}" if rel else f".wh.{name}")
            marker.mtime = int(st.st_mtime)
            tar.addfile(marker)
            continue
        _add(tar, full, arc)
        if stat.S_ISDIR(st.st_mode):
            if _opaque(full):
                marker = tarfile.TarInfo(f"{arc}/.wh..wh..opq")
                marker.mtime = int(st.st_mtime)
                tar.addfile(marker)
            _walk(tar, root, arc)
