"""Small text helpers shared by the spec loader and the engine (which must not import the spec)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean `x`?' hint for a misspelt key, or None when nothing is close."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return f"did you mean `{match[0]}`?" if match else None
