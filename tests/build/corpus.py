"""Where the shared parser fixtures live: `<repo root>/../shared` (CI and the main checkout), or
one level further up for a git worktree kept under `<workspace>/wt/<name>`."""

from __future__ import annotations

from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    for candidate in (_REPO / ".." / "shared", _REPO / ".." / ".." / "shared"):
        if (candidate / "corpus").is_dir():
            return candidate.resolve()
    return (_REPO / ".." / "shared").resolve()


PARSER_CORPUS = shared_dir() / "corpus" / "dockerfile-parser"
