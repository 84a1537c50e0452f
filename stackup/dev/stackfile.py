"""The stack's own inputs while watching: the stack files, included files, `.env` and env files.

A change to any of them is re-loaded and, when valid, planned and applied as `stackup up` would,
with the plan's causes in the report (`environment.DEBUG: "0" -> "1"`). An invalid file changes
nothing: the located error is reported and the running stack is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stackup.dev.report import EventKind, WatchEvent

if TYPE_CHECKING:
    from stackup.planner.plan import Plan
    from stackup.spec.loader import LoadedProject


@dataclass(frozen=True)
class StackInputs:
    """The files a load read (a missing `.env` is an input too: creating it is a change)."""

    files: frozenset[Path]

    @classmethod
    def of(cls, loaded: LoadedProject) -> StackInputs:
        paths = {Path(p).absolute() for p in loaded.files}
        if loaded.inputs is not None:
            paths |= {Path(p).absolute() for p in loaded.inputs.files}
        return cls(frozenset(paths))

    @property
    def directories(self) -> set[Path]:
        return {p.parent for p in self.files if p.parent.is_dir()}

    def touched(self, paths: Iterable[str]) -> list[Path]:
        return sorted({Path(p) for p in paths} & self.files)


def plan_lines(plan: Plan) -> list[str]:
    """The operations that change something, each with its causes: `recreate web-1: environment...`."""
    out: list[str] = []
    for op in plan:
        if not op.changes_state:
            continue
        reasons = op.reasons()
        out.append(f"{op.kind} {op.name}" + (f": {'; '.join(reasons)}" if reasons else ""))
    return out


def replan(
    changed: Sequence[Path],
    reload: Callable[[], object],
    plan: Callable[[], Plan],
    apply: Callable[[], object],
) -> WatchEvent:
    """Reload (errors reported, nothing changed), plan, and apply when the plan changes anything."""
    from stackup.errors import StackupError

    names = ", ".join(p.name for p in changed)
    try:
        reload()
    except StackupError as exc:
        message = f"{names} changed but is not valid; nothing applied"
        return WatchEvent(EventKind.ERROR, message, detail=str(exc))
    try:
        planned = plan()
        lines = plan_lines(planned)
        if not lines:
            return WatchEvent(EventKind.PLANNED, f"{names} changed: nothing to do")
        apply()
    except StackupError as exc:
        return WatchEvent(EventKind.ERROR, f"{names} changed; applying it failed", detail=str(exc))
    return WatchEvent(EventKind.APPLIED, f"{names} changed: applied", detail="\n".join(lines))
