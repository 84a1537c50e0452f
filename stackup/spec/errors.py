"""Located problems in stack files.

Every pass of the loader reports problems against a *key path* (`services.web.ports[0]`); the
`SourceMap` built while parsing turns a path into `file:line:col`. Passes collect problems rather
than raising on the first one, so a user sees every mistake in one run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from stackup.errors import StackupError

PathPart = str | int
KeyPath = tuple[PathPart, ...]


def format_path(path: KeyPath) -> str:
    """`("services", "web", "ports", 0)` -> `services.web.ports[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += part if not out else f".{part}"
    return out


@dataclass(frozen=True, slots=True)
class Location:
    """1-based line and column in a file, as editors and compilers print them."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(slots=True)
class SourceMap:
    """Key path -> where it was written. Lookups fall back to the nearest located ancestor.

    Later files overwrite earlier entries for the same path, which is what a reader of a merged
    project expects: the file that decided the value is the one to fix.
    """

    entries: dict[KeyPath, Location] = field(default_factory=dict)

    def add(self, path: KeyPath, loc: Location) -> None:
        self.entries[path] = loc

    def update(self, other: SourceMap, prefix: KeyPath = (), strip: KeyPath = ()) -> None:
        """Copy `other`'s entries, re-rooting those under `strip` to live under `prefix`."""
        n = len(strip)
        for path, loc in other.entries.items():
            if path[:n] == strip:
                self.entries[prefix + path[n:]] = loc

    def locate(self, path: KeyPath) -> Location | None:
        for end in range(len(path), -1, -1):
            loc = self.entries.get(path[:end])
            if loc is not None:
                return loc
        return None


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake: where, which key, what is wrong (and, ideally, what to do)."""

    message: str
    path: KeyPath = ()
    location: Location | None = None
    hint: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.path:
            parts.append(format_path(self.path))
        parts.append(self.message + (f" ({self.hint})" if self.hint else ""))
        return ": ".join(parts)


class SpecError(StackupError):
    """The stack file(s) are invalid. Holds every problem found, sorted by file position."""

    exit_code = 3

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=_problem_order))
        self.warnings: tuple[str, ...] = ()
        text = "\n".join(str(p) for p in self.problems)
        super().__init__(text or "invalid stack file")


class DependencyCycle(SpecError):
    """`depends_on` (or an implicit dependency) forms a cycle; `cycle` lists the services in order."""

    def __init__(self, cycle: Sequence[str], problems: Sequence[Problem]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(problems)


def _problem_order(p: Problem) -> tuple[str, int, int, str]:
    loc = p.location
    if loc is None:
        return ("\uffff", 0, 0, format_path(p.path))
    return (loc.file, loc.line, loc.col, format_path(p.path))


class ProblemCollector:
    """Accumulates problems across a pass; `raise_if_any` ends the load with all of them."""

    def __init__(self, source_map: SourceMap | None = None) -> None:
        self.problems: list[Problem] = []
        self.source_map = source_map or SourceMap()

    def add(self, path: KeyPath, message: str, hint: str | None = None,
            location: Location | None = None) -> None:
        loc = location or self.source_map.locate(path)
        self.problems.append(Problem(message=message, path=path, location=loc, hint=hint))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.problems.extend(problems)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)
