"""overlayfs rootfs mounts: whiteouts hide lower files, writes go up, scratch and deep stacks work."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stackup.runtime.engine import linux
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.engine.images.layers import unpack_layer
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.images.testimage import ensure_busybox_image
from stackup.runtime.wire.paths import EnginePaths

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlayfs needs root")]

Mounter = Callable[[list[Path], Path], Path]


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Mounter]:
    """Mount overlays under tmp_path and unmount every one of them, whatever the test did."""
    targets: list[Path] = []

    def mount(lower: list[Path], base: Path) -> Path:
        target = base / "rootfs"
        targets.append(target)
        mount_rootfs(lower, base / "upper", base / "work", target)
        return target

    yield mount
    for target in reversed(targets):
        unmount_rootfs(target)
        assert linux.mount_fstype(target) is None


def layer_dir(root: Path, name: str, entries: list[tuple[str, bytes | None]]) -> Path:
    """Unpack a hand-made layer: `(name, data)` is a file, `(name, None)` a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in entries:
            info = tarfile.TarInfo(path)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    dest = root / name
    dest.mkdir(parents=True)
    buffer.seek(0)
    unpack_layer(buffer, dest)
    return dest


def test_whiteouts_and_opaque_dirs_hide_lower_files(tmp_path: Path, overlay: Mounter) -> None:
    base = layer_dir(tmp_path, "l0", [("etc/", None), ("etc/keep", b"k"), ("etc/gone", b"g"),
                                      ("cache/", None), ("cache/a", b"a"), ("cache/b", b"b")])
    top = layer_dir(tmp_path, "l1", [("etc/.wh.gone", b""), ("cache/.wh..wh..opq", b""),
                                     ("cache/fresh", b"f")])
    root = overlay([base, top], tmp_path / "c")
    assert (root / "etc/keep").read_bytes() == b"k"
    assert not (root / "etc/gone").exists()
    assert sorted(os.listdir(root / "cache")) == ["fresh"]
    assert sorted(os.listdir(root / "etc")) == ["keep"]


def test_copy_on_write_leaves_lower_untouched(tmp_path: Path, overlay: Mounter) -> None:
    base = layer_dir(tmp_path, "l0", [("data/", None), ("data/f", b"original"), ("data/rm", b"x")])
    root = overlay([base], tmp_path / "c")
    (root / "data/f").write_bytes(b"changed")
    (root / "data/new").write_bytes(b"new")
    (root / "data/rm").unlink()
    assert (base / "data/f").read_bytes() == b"original"
    assert (base / "data/rm").exists() and not (base / "data/new").exists()
    upper = tmp_path / "c/upper"
    assert (upper / "data/f").read_bytes() == b"changed"
    assert (upper / "data/new").read_bytes() == b"new"
    assert (upper / "data/rm").is_char_device()


def test_scratch_image_gets_an_empty_lower(tmp_path: Path, overlay: Mounter) -> None:
    root = overlay([], tmp_path / "c")
    assert os.listdir(root) == []
    (root / "hello").write_text("hi")
    assert (tmp_path / "c/upper/hello").read_text() == "hi"


def test_deep_stacks_beyond_the_option_page(tmp_path: Path, overlay: Mounter) -> None:
    deep = tmp_path / ("long-directory-name-" * 4)
    lowers = [layer_dir(deep, f"layer-{n:03d}-{'x' * 40}", [(f"f{n}", str(n).encode())]) for n in range(120)]
    assert len(":".join(map(str, lowers))) > 4096
    root = overlay(lowers, tmp_path / "c")
    assert len(os.listdir(root)) == 120
    assert (root / "f0").read_text() == "0" and (root / "f119").read_text() == "119"


def test_mount_is_idempotent_and_unmount_tolerates_absent_mounts(tmp_path: Path, overlay: Mounter) -> None:
    base = layer_dir(tmp_path, "l0", [("a", b"1")])
    root = overlay([base], tmp_path / "c")
    mount_rootfs([base], tmp_path / "c/upper", tmp_path / "c/work", root)  # already mounted: no-op
    assert Path("/proc/self/mountinfo").read_text().count(f" {root} ") == 1
    unmount_rootfs(tmp_path / "never-mounted")


def test_busybox_image_stacks_over_the_store(stackup_root: Path, tmp_path: Path, overlay: Mounter) -> None:
    store = ImageStore(EnginePaths.from_env())
    image = ensure_busybox_image(store)
    container = store.paths.container("overlay-test")
    root = overlay(store.layer_dirs(image), container.dir)
    assert os.readlink(root / "bin/sh") == "busybox"
    assert linux.mount_fstype(root) == "overlay"
