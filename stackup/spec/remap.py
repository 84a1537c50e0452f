"""Index maps: where an item of a rewritten list came from, so problems point at what was written.

Two passes change list indices. Normalisation expands one port spec into several (`8000-8001:80`)
and drops entries it has already reported; salvaging (after a failed validation) cuts rejected
items. A later problem at `ports[3]` must still name, and locate, the entry the user wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackup.spec.errors import KeyPath, Location, Problem, SourceMap

__all__ = ["IndexMap", "MappedSourceMap"]


@dataclass(slots=True)
class IndexMap:
    """Rewritten list path (in original coordinates) -> the original index of each new item."""

    lists: dict[KeyPath, list[int]] = field(default_factory=dict)

    def record(self, path: KeyPath, sources: list[int]) -> None:
        if sources != list(range(len(sources))):
            self.lists[path] = sources

    def original(self, path: KeyPath) -> KeyPath:
        """The key path in the input of the pass that rewrote the lists."""
        out: list[str | int] = []
        for part in path:
            sources = self.lists.get(tuple(out))
            mapped = part
            if isinstance(part, int) and sources is not None and 0 <= part < len(sources):
                mapped = sources[part]
            out.append(mapped)
        return tuple(out)

    def restore(self, problem: Problem, smap: SourceMap) -> Problem:
        """`problem` at its original key path, located through `smap` (original coordinates)."""
        if not self.lists or not problem.path:
            return problem
        path = self.original(problem.path)
        return Problem(message=problem.message, path=path, location=smap.locate(path), hint=problem.hint)


class MappedSourceMap(SourceMap):
    """A `SourceMap` over rewritten lists: looks a path up at its original index."""

    __slots__ = ("base", "index")

    def __init__(self, base: SourceMap, index: IndexMap) -> None:
        super().__init__(base.entries)
        self.base = base
        self.index = index

    def locate(self, path: KeyPath) -> Location | None:
        return self.base.locate(self.index.original(path))
