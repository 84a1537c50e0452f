"""A container's upper directory as an image layer tar: what `commit` adds on top of the image.

overlayfs records deletions in its own form, the reverse of what `layers.unpack_layer` makes: a
0:0 character device `x` becomes the empty whiteout file `.wh.x`, and a directory marked
`trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry. Entries are written in sorted order, so
an unchanged upper gives the same DiffID. Overlay features that leave an entry's content in a
lower layer (renamed directories with `redirect_dir`, `metacopy` files) cannot be expressed in
a layer; the engine mounts without them, and an upper that has them is refused rather than
committed incomplete.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import IO

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.images.layers import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX

_OVERLAY_XATTR = "trusted.overlay."
_PAX_XATTR = "SCHILY.xattr."
_INCOMPLETE = ("trusted.overlay.redirect", "trusted.overlay.metacopy")


def _xattrs(path: Path) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found = {}
    for name in names:
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return found


def _marker(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o600
    return info


def pack_upper(upper: Path, out: IO[bytes]) -> None:
    """Write the changes recorded in `upper` as an uncompressed layer tar into `out`."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _walk(tar, upper, "")


def _walk(tar: tarfile.TarFile, directory: Path, prefix: str) -> None:
    for name in sorted(os.listdir(directory)):
        path, arcname = directory / name, prefix + name
        st = os.lstat(path)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            tar.addfile(_marker(prefix + WHITEOUT_PREFIX + name))
            continue
        xattrs = _xattrs(path)
        for key in _INCOMPLETE:
            if key in xattrs:
                raise RuntimeFailure(
                    f"cannot commit /{arcname}: overlayfs kept its content in a lower layer ({key}); "
                    "mount overlays without redirect_dir and metacopy")
        info = tar.gettarinfo(os.fspath(path), arcname)
        info.uname = info.gname = ""
        info.pax_headers = {
            _PAX_XATTR + key: value.decode("utf-8", "surrogateescape")
            for key, value in xattrs.items() if not key.startswith(_OVERLAY_XATTR)
        }
        if info.isreg():
            with open(path, "rb") as data:
                tar.addfile(info, data)
        else:
            tar.addfile(info)
        if stat.S_ISDIR(st.st_mode):
            if xattrs.get(OPAQUE_XATTR) == b"y":
                tar.addfile(_marker(f"{arcname}/{OPAQUE_MARKER}"))
            _walk(tar, path, arcname + "/")
