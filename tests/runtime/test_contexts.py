"""Packing a build context for a remote engine: `.dockerignore` applied, the Dockerfile kept."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from stackup.runtime.native.contexts import pack


def _names(context: Path, keep: tuple[str, ...] = ()) -> set[str]:
    with pack(context, keep) as archive, tarfile.open(fileobj=archive) as tar:
        return set(tar.getnames())


def test_dockerignore_keeps_files_home_but_never_the_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print()\n")
    (tmp_path / "node_modules" / "dep").mkdir(parents=True)
    (tmp_path / "node_modules" / "dep" / "index.js").write_text("x\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("x\n")
    (tmp_path / "logs" / "keep.log").write_text("x\n")
    (tmp_path / "Dockerfile.dev").write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text("node_modules\nlogs/*.log\n!logs/keep.log\nDockerfile*\n")
    os.symlink("app.py", tmp_path / "link.py")
    names = _names(tmp_path, keep=("Dockerfile.dev",))
    assert names == {"app.py", "logs", "logs/keep.log", "Dockerfile.dev", ".dockerignore", "link.py"}


def test_symlinks_travel_as_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x\n")
    os.symlink("real", tmp_path / "alias")
    with pack(tmp_path) as archive, tarfile.open(fileobj=archive) as tar:
        alias = tar.getmember("alias")
        assert alias.issym() and alias.linkname == "real"
