"""Located warnings for keys a deploy target cannot honour.

A stack file written for one machine often uses keys a cluster has no equivalent for (`cap_add`
on a restricted cluster, `network_mode: service:x`, bind mounts of the developer's files). The
user must see each one with the place it was written, so it is a `Problem` (the loader's own
located message type) looked up in the load's `SourceMap`.
"""

from __future__ import annotations

from stackup.spec.errors import KeyPath, Problem, SourceMap


class Notes:
    """Collects the warnings of one rendering, each once, in the order they were found."""

    def __init__(self, source_map: SourceMap | None = None, target: str = "kubernetes") -> None:
        self.source_map = source_map or SourceMap()
        self.target = target
        self.items: list[Problem] = []
        self._seen: set[tuple[KeyPath, str]] = set()

    def add(self, path: KeyPath, message: str) -> None:
        if (path, message) in self._seen:
            return
        self._seen.add((path, message))
        self.items.append(Problem(message=message, path=path, location=self.source_map.locate(path)))

    def unmapped(self, path: KeyPath, what: str = "") -> None:
        """The usual note: this key has no equivalent on the target and is left out."""
        detail = f" ({what})" if what else ""
        self.add(path, f"not supported on {self.target}; left out{detail}")

    def sorted(self) -> tuple[Problem, ...]:
        """In file order, as the loader reports problems; unlocated ones last."""
        def order(p: Problem) -> tuple[str, int, int]:
            loc = p.location
            return ("\uffff", 0, 0) if loc is None else (loc.file, loc.line, loc.col)

        return tuple(sorted(self.items, key=order))
