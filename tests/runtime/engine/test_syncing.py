"""`syncing.apply` on a plain directory standing for a container's root: writes, whiteouts,
ownership and mode the directory implies, symlink escapes refused."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers import files, syncing


def _tar(
    entries: list[tuple[str, bytes | None, int]], symlinks: dict[str, str] | None = None
) -> tarfile.TarFile:
    """(name, content or None for a directory, mode) entries; whiteouts are empty files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r")


def _apply(root: Path, directory: str, tar: tarfile.TarFile) -> syncing.SyncCounts:
    with files.RootDir(str(root)) as rootdir:
        return syncing.apply(rootdir, directory, tar)


def test_writes_creates_and_deletes(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "old").mkdir(parents=True)
    (app / "old" / "x.txt").write_text("x")
    (app / "gone.txt").write_text("bye")
    counts = _apply(tmp_path, "/app", _tar([
        ("main.py", b"print(1)\n", 0o644),
        ("pkg/sub/mod.py", b"m", 0o755),
        (".wh.gone.txt", b"", 0o644),
        (".wh.old", b"", 0o644),
        ("new/.wh.never-there", b"", 0o644),
    ]))
    assert counts == syncing.SyncCounts(written=2, deleted=2)
    assert (app / "main.py").read_text() == "print(1)\n"
    assert (app / "pkg/sub/mod.py").read_text() == "m"
    assert not (app / "gone.txt").exists() and not (app / "old").exists()
    assert stat.S_IMODE((app / "pkg/sub/mod.py").stat().st_mode) == 0o755
    assert not [p for p in app.iterdir() if p.name.startswith(".stackup-sync")]


def test_target_directory_is_made_with_the_owner_and_mode_of_its_parent(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    os.chown(srv, 1234, 2345)
    srv.chmod(0o775)
    _apply(tmp_path, "/srv/app", _tar([("a/b.txt", b"b", 0o666), ("run.sh", b"#!/bin/sh\n", 0o777)]))
    for path in (srv / "app", srv / "app/a", srv / "app/a/b.txt", srv / "app/run.sh"):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (1234, 2345), path
    assert stat.S_IMODE((srv / "app/a").stat().st_mode) == 0o775
    assert stat.S_IMODE((srv / "app/a/b.txt").stat().st_mode) == 0o664  # the directory grants group write
    assert stat.S_IMODE((srv / "app/run.sh").stat().st_mode) == 0o775


def test_an_existing_file_keeps_its_owner_and_loses_world_write(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    app.chmod(0o755)
    (app / "conf").write_text("old")
    os.chown(app / "conf", 42, 43)
    _apply(tmp_path, "/app", _tar([("conf", b"new", 0o666)]))
    info = (app / "conf").stat()
    assert ((app / "conf").read_text(), info.st_uid, info.st_gid) == ("new", 42, 43)
    assert stat.S_IMODE(info.st_mode) == 0o644


def test_a_directory_replaced_by_a_file_and_a_symlink_written_as_a_link(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "thing").mkdir(parents=True)
    (app / "thing" / "inner").write_text("i")
    _apply(tmp_path, "/app", _tar([("thing", b"now a file", 0o644)], symlinks={"link": "/etc/passwd"}))
    assert (app / "thing").read_text() == "now a file"
    assert os.readlink(app / "link") == "/etc/passwd"


def test_symlinks_in_the_container_never_lead_outside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "app").symlink_to(outside)  # absolute: resolved inside the root, not on the host
    _apply(root, "/app", _tar([("x.txt", b"x", 0o644)]))
    assert not (outside / "x.txt").exists()
    assert (root / str(outside).lstrip("/") / "x.txt").read_text() == "x"


def test_refuses_members_that_climb_out(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    with pytest.raises(RuntimeFailure, match="outside"):
        _apply(tmp_path, "/app", _tar([("../escape.txt", b"x", 0o644)]))
    assert not (tmp_path / "escape.txt").exists()


def test_a_symlink_loop_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(RuntimeFailure, match="symbolic links"):
        _apply(tmp_path, "/loop/app", _tar([("x", b"x", 0o644)]))
