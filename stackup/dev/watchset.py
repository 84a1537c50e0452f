"""Which directories to hand the notifier, so ignored trees cost no inotify watch.

watchfiles' notifier (Rust `notify`) watches a path recursively by adding an inotify watch to
every directory beneath it, and it takes no filter: a rule on `.` with `node_modules/` ignored
would still pay one watch per directory of `node_modules` (and the walk to place them). So the
session walks the rule roots itself, never entering a directory every covering rule prunes
(`RuleMatcher.prunes`: ignored, and no `!` pattern could bring back something beneath), and
hands over:
- *recursive* paths: subtrees with nothing pruned inside (notify follows new directories there);
- *flat* paths: directories with a pruned directory somewhere beneath, watched on their own.
A directory created later directly in a flat one is not watched by anything, and an ignored
directory created inside a recursive subtree would be watched: `stale` spots both in a batch of
changes so the session re-plans (the new notifiers are armed before the old ones close, and an
added directory's content is walked when it is synced, so nothing written meanwhile is lost).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change

from stackup.dev.rules import RuleMatcher


@dataclass(frozen=True)
class WatchSet:
    recursive: tuple[Path, ...] = ()
    flat: tuple[Path, ...] = ()

    def __len__(self) -> int:
        return len(self.recursive) + len(self.flat)


def _pruned(directory: Path, matchers: Sequence[RuleMatcher]) -> bool:
    covering = [m for m in matchers if m.covers(directory)]
    return bool(covering) and all(m.root != directory and m.prunes(directory) for m in covering)


def plan(roots: Iterable[Path], matchers: Sequence[RuleMatcher]) -> WatchSet:
    """The watch set for `roots` (outermost first; nested roots are walked as part of theirs)."""
    recursive: list[Path] = []
    flat: list[Path] = []

    def walk(directory: Path) -> bool:
        """True if nothing under `directory` is pruned (the caller may watch it recursively)."""
        try:
            children = sorted(e.path for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return True
        clean: list[Path] = []
        whole = True
        for child in map(Path, children):
            if _pruned(child, matchers):
                whole = False
            elif walk(child):
                clean.append(child)
            else:
                whole = False
        if not whole:
            flat.append(directory)
            recursive.extend(clean)
        return whole

    for root in outermost(roots):
        if walk(root):
            recursive.append(root)
    return WatchSet(tuple(sorted(recursive)), tuple(sorted(flat)))


def stale(watched: WatchSet, matchers: Sequence[RuleMatcher], changes: Iterable[tuple[Change, str]]) -> bool:
    """True if an added directory is not watched as it should be: a kept one in a flat directory
    (nothing watches it) or a pruned one inside a recursive path (notify watches it)."""
    flat = set(watched.flat)
    for change, raw in changes:
        path = Path(raw)
        if change is not Change.added or not path.is_dir():
            continue
        pruned = _pruned(path, matchers)
        if not pruned and path.parent in flat:
            return True
        if pruned and any(path.is_relative_to(r) for r in watched.recursive):
            return True
    return False


def outermost(paths: Iterable[Path]) -> list[Path]:
    """Drop paths that lie under another (watched as part of it already)."""
    unique = set(paths)
    return sorted(p for p in unique if not any(p != q and p.is_relative_to(q) for q in unique))
