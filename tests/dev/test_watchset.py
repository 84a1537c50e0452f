"""Ignored directories cost no inotify watch: the watch set leaves pruned trees out, and a
directory created later where nothing watches it (or an ignored one where notify would) makes
the set stale. Watches are counted on a real watchfiles notifier through /proc/self/fdinfo."""

from __future__ import annotations

import os
import queue
from pathlib import Path

from watchfiles import Change

from stackup.dev.rules import RuleMatcher, matchers_for
from stackup.dev.watch import Notifier
from stackup.dev.watchset import WatchSet, plan, stale
from stackup.spec.models import Service


def _matchers(root: Path, ignore: list[str]) -> list[RuleMatcher]:
    service = Service.model_validate({"image": "x", "develop": {"watch": [
        {"path": str(root), "target": "/app", "action": "sync", "ignore": ignore}]}})
    return matchers_for("web", service)


def _tree(root: Path) -> None:
    for d in ("node_modules/a/b", "node_modules/c", ".git/objects/aa", "src/pkg/sub", "docs",
              "lib/node_modules/x", "lib/core"):
        (root / d).mkdir(parents=True)
        (root / d / "f.txt").write_text("x")


def _inotify_watches() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify":
                count += Path(f"/proc/self/fdinfo/{fd}").read_text().count("inotify wd:")
        except OSError:
            continue
    return count


def test_pruned_trees_are_left_out_and_clean_subtrees_are_recursive(tmp_path: Path) -> None:
    _tree(tmp_path)
    watched = plan([tmp_path], _matchers(tmp_path, ["node_modules/", "**/node_modules"]))
    assert watched.flat == (tmp_path, tmp_path / "lib")
    assert watched.recursive == (tmp_path / "docs", tmp_path / "lib" / "core", tmp_path / "src")


def test_nothing_pruned_is_one_recursive_root(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert plan([tmp_path], _matchers(tmp_path, [])) == WatchSet((tmp_path,), ())


def test_a_negated_pattern_keeps_the_directory_watched(tmp_path: Path) -> None:
    _tree(tmp_path)
    watched = plan([tmp_path], _matchers(tmp_path, ["node_modules/", "!node_modules/c/f.txt"]))
    assert tmp_path / "node_modules" in watched.recursive  # `!` may bring back a file beneath
    assert watched.flat == (tmp_path,)  # .git/ is left out all the same


def test_new_directories_make_the_set_stale_where_they_are_not_watched_right(tmp_path: Path) -> None:
    _tree(tmp_path)
    matchers = _matchers(tmp_path, ["node_modules/", "**/node_modules"])
    watched = plan([tmp_path], matchers)
    (tmp_path / "new").mkdir()
    (tmp_path / "src" / "node_modules").mkdir()
    (tmp_path / "src" / "fresh").mkdir()
    (tmp_path / "lib" / "node_modules" / "y").mkdir()
    assert stale(watched, matchers, {(Change.added, str(tmp_path / "new"))})  # in a flat directory
    # pruned, inside a recursive path
    assert stale(watched, matchers, {(Change.added, str(tmp_path / "src" / "node_modules"))})
    assert not stale(watched, matchers, {(Change.added, str(tmp_path / "src" / "fresh"))})  # notify follows
    assert not stale(watched, matchers, {(Change.added, str(tmp_path / "lib" / "node_modules" / "y"))})
    assert not stale(watched, matchers, {(Change.modified, str(tmp_path / "new"))})


def test_ignored_directories_cost_no_inotify_watch(tmp_path: Path) -> None:
    _tree(tmp_path)
    for n in range(50):
        (tmp_path / "node_modules" / f"p{n}").mkdir()
    watched = plan([tmp_path], _matchers(tmp_path, ["node_modules/", "**/node_modules"]))
    before = _inotify_watches()
    notifiers = [Notifier(list(watched.recursive), True, queue.Queue()),
                 Notifier(list(watched.flat), False, queue.Queue())]
    try:
        # root, lib (flat); docs, lib/core, src, src/pkg, src/pkg/sub (recursive)
        assert _inotify_watches() - before == 7
    finally:
        for notifier in notifiers:
            notifier.close()
