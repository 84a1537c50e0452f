"""The build context: source resolution, escapes, symlinks, globs, .dockerignore, digests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackup.build.context import BuildContext, ContextError, StatCache
from stackup.build.ignore import IgnoreMatcher


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print(1)\n")
    (root / "src" / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "src" / "notes.md").write_text("notes\n")
    (root / "README.md").write_text("hi\n")
    (root / "secret.env").write_text("TOKEN=x\n")
    (tmp_path / "outside.txt").write_text("no\n")
    return root


def test_resolve_plain_absolute_and_globs(ctx: Path) -> None:
    c = BuildContext(ctx)
    assert c.resolve("src/main.py") == ["src/main.py"]
    assert c.resolve("/src/main.py") == ["src/main.py"]  # absolute means inside the context
    assert c.resolve("./src/../README.md") == ["README.md"]
    assert c.resolve("src/*.py") == ["src/main.py"]
    assert c.resolve("*/*/m?d.py") == ["src/pkg/mod.py"]
    assert c.resolve("[Rs]*") == ["README.md", "secret.env", "src"]
    assert c.resolve("[^s]*") == ["README.md"]
    assert c.resolve(".") == ["."]


@pytest.mark.parametrize("bad", ["../outside.txt", "src/../../outside.txt", ".."])
def test_escapes_are_refused(ctx: Path, bad: str) -> None:
    with pytest.raises(ContextError, match="outside the build context"):
        BuildContext(ctx).resolve(bad)


def test_missing_and_empty_globs(ctx: Path) -> None:
    c = BuildContext(ctx)
    with pytest.raises(ContextError, match="not found"):
        c.resolve("nope.txt")
    with pytest.raises(ContextError, match="matches nothing"):
        c.resolve("*.nothing")


def test_symlinks_inside_followed_outside_refused(ctx: Path) -> None:
    os.symlink("src/pkg", ctx / "inside")
    os.symlink("/etc", ctx / "abs")
    os.symlink("../outside.txt", ctx / "up")
    os.symlink("../../outside.txt", ctx / "src" / "deep")
    c = BuildContext(ctx)
    assert c.resolve("inside/mod.py") == ["src/pkg/mod.py"]
    assert c.resolve("inside") == ["src/pkg"]
    for name in ("abs/passwd", "up", "src/deep"):
        with pytest.raises(ContextError, match="outside the build context"):
            c.resolve(name)
    # inside a copied directory a link is content (its target), never followed
    entries = {e.path: e for e in c.entries("src")}
    assert entries["src/deep"].kind == "symlink"


def test_dockerignore_hides_files(ctx: Path) -> None:
    ignore = IgnoreMatcher.from_lines(["*.md", "**/*.md", "secret.env", "!README.md"])
    c = BuildContext(ctx, ignore)
    with pytest.raises(ContextError, match="not found"):
        c.resolve("secret.env")
    assert c.resolve("*") == ["README.md", "src"]
    paths = [e.path for e in c.entries(".")]
    assert "src/notes.md" not in paths and "README.md" in paths and "src/pkg/mod.py" in paths


def test_excluded_directory_with_reincluded_child(ctx: Path) -> None:
    c = BuildContext(ctx, IgnoreMatcher.from_lines(["src", "!src/pkg/mod.py"]))
    files = [e.path for e in c.entries(".") if e.kind == "file"]
    assert files == ["README.md", "secret.env", "src/pkg/mod.py"]


def test_copy_exclude_patterns_are_relative_to_the_source(ctx: Path) -> None:
    c = BuildContext(ctx)
    paths = [e.path for e in c.entries("src", excludes=["*.md", "pkg"])]
    assert paths == ["src", "src/main.py"]


def test_digest_is_content_not_mtime(ctx: Path) -> None:
    c = BuildContext(ctx)
    before = c.digest(["src"])
    os.utime(ctx / "src" / "main.py", (1, 1))
    assert BuildContext(ctx).digest(["src"]) == before
    (ctx / "src" / "main.py").write_text("print(2)\n")
    changed = BuildContext(ctx).digest(["src"])
    assert changed != before
    os.chmod(ctx / "src" / "main.py", 0o755)
    assert BuildContext(ctx).digest(["src"]) != changed
    assert c.digest(["README.md"]) == c.digest(["/README.md"])
    assert c.digest(["README.md"]) != c.digest(["secret.env"])


def test_rename_changes_digest(ctx: Path) -> None:
    before = BuildContext(ctx).digest(["src"])
    (ctx / "src" / "main.py").rename(ctx / "src" / "app.py")
    assert BuildContext(ctx).digest(["src"]) != before


def test_stat_cache_skips_unchanged_files_and_persists(ctx: Path, tmp_path: Path) -> None:
    cache = StatCache()
    BuildContext(ctx, stat_cache=cache).digest(["."])
    assert cache.misses == 5 and cache.hits == 0
    BuildContext(ctx, stat_cache=cache).digest(["."])
    assert cache.hits == 5
    saved = tmp_path / "stat.json"
    cache.save(saved)
    again = StatCache.load(saved)
    BuildContext(ctx, stat_cache=again).digest(["."])
    assert again.hits == 5 and again.misses == 0
    assert StatCache.load(tmp_path / "missing.json").hits == 0


def test_special_files_are_refused(ctx: Path) -> None:
    os.mkfifo(ctx / "fifo")
    with pytest.raises(ContextError, match="not a regular file"):
        BuildContext(ctx).digest(["."])
