"""`.dockerignore` with Docker's exact rules (moby/patternmatcher and its ignore-file reader).

Reading: a line starting with `#` (in column 1) is a comment; lines are trimmed; `!` re-includes;
each pattern is cleaned as Go's `filepath.Clean` does (`./a` -> `a`, `a/../b` -> `b`) and a leading
`/` is dropped, so patterns are always relative to the context root. A malformed glob (`[a`, a
trailing `\\`) is an error, as in Docker.

Matching: `*` and `?` stay inside one path element, `**` spans any number of them, `[...]` is a
character class. A pattern that matches a directory matches everything under it. The last pattern
that matches a path (the path itself or any parent directory) decides: excluded, or re-included by
a `!` pattern. So order matters: `*.md` then `!README.md` keeps README.md.

`<Dockerfile>.dockerignore` next to the Dockerfile wins over the context's `.dockerignore`. The
Dockerfile and the ignore file are read by the builder whatever the patterns say, but COPY and ADD
honour the patterns for them too, as Docker documents.

`explain(path)` says which pattern (file and line) decided, for `stackup watch --explain`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackup.build.dockerfile.gotext import go_clean
from stackup.errors import DockerfileError

_ESCAPE = frozenset(".+()|{}$")


class _Kind:
    EXACT, PREFIX, SUFFIX, REGEX = range(4)


@dataclass(frozen=True)
class IgnorePattern:
    """One pattern as cleaned, with where it was written."""

    pattern: str
    exclusion: bool
    source: str
    line: int
    kind: int
    regex: re.Pattern[str] | None

    @property
    def text(self) -> str:
        return ("!" if self.exclusion else "") + self.pattern

    def match(self, path: str) -> bool:
        p = self.pattern
        if self.kind == _Kind.EXACT:
            return path == p
        if self.kind == _Kind.PREFIX:
            return path.startswith(p[:-2])
        if self.kind == _Kind.SUFFIX:
            suffix = p[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None


@dataclass(frozen=True)
class Decision:
    """Whether `path` is ignored, and the pattern that decided (None: no pattern matched)."""

    path: str
    ignored: bool
    pattern: IgnorePattern | None

    def __str__(self) -> str:
        if self.pattern is None:
            return f"{self.path}: included (no pattern matches)"
        verdict = "ignored" if self.ignored else "included"
        return f"{self.path}: {verdict} by {self.pattern.text!r} ({self.pattern.source}:{self.pattern.line})"


def _validate_glob(p: str) -> bool:
    """Go's `filepath.Match` syntax check: classes closed and non-empty, no dangling escape."""
    n = len(p)

    def esc(j: int) -> tuple[str, int]:
        if j >= n or p[j] in "-]":
            return "", -1
        if p[j] == "\\":
            j += 1
            if j >= n:
                return "", -1
        return p[j], j + 1

    i = 0
    while i < n:
        c = p[i]
        if c == "\\":
            if i + 1 >= n:
                return False
            i += 2
            continue
        i += 1
        if c != "[":
            continue
        if i < n and p[i] == "^":
            i += 1
        first = True
        while not (i < n and p[i] == "]" and not first):
            lo, i = esc(i)
            if i < 0:
                return False
            if i < n and p[i] == "-":
                hi, i = esc(i + 1)
                if i < 0 or hi < lo:
                    return False
            first = False
        i += 1
    return True


def _compile(pattern: str) -> tuple[int, re.Pattern[str] | None]:
    out = ["^"]
    kind = _Kind.EXACT
    i, n, token = 0, len(pattern), 0
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if kind == _Kind.EXACT:
                        kind = _Kind.PREFIX
                    else:
                        out.append(".*")
                        kind = _Kind.REGEX
                else:
                    out.append("(.*/)?")
                    kind = _Kind.REGEX
                if token == 0:
                    kind = _Kind.SUFFIX
            else:
                out.append("[^/]*")
                kind = _Kind.REGEX
        elif ch == "?":
            out.append("[^/]")
            kind = _Kind.REGEX
        elif ch in _ESCAPE:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + pattern[i])
                i += 1
                kind = _Kind.REGEX
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = _Kind.REGEX
        else:
            out.append(ch)
        token += 1
    if kind != _Kind.REGEX:
        return kind, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kind, re.compile("".join(out) + r"\Z", re.DOTALL)


def read_patterns(lines: Iterable[str]) -> list[tuple[int, str]]:
    """Docker's ignore-file reader: (line number, pattern) with `!` kept in front."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if number == 1:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append((number, "!" + pattern if invert else pattern))
    return out


class IgnoreMatcher:
    """Ordered ignore patterns; `matches` says whether a context-relative path is left out."""

    def __init__(self, patterns: Sequence[IgnorePattern], source: str | None = None) -> None:
        self.patterns = tuple(patterns)
        self.source = source
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = ".dockerignore") -> IgnoreMatcher:
        compiled: list[IgnorePattern] = []
        for number, text in read_patterns(lines):
            p = go_clean(text.strip())
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise DockerfileError('illegal exclusion pattern: "!"', path=source, line=number)
                p = p[1:]
            if not _validate_glob(p):
                raise DockerfileError(f"syntax error in pattern {p!r}", path=source, line=number)
            try:
                kind, regex = _compile(p)
            except re.error:
                raise DockerfileError(f"syntax error in pattern {p!r}", path=source, line=number) from None
            compiled.append(IgnorePattern(p, exclusion, source, number, kind, regex))
        return cls(compiled, source)

    @classmethod
    def from_file(cls, path: str | Path) -> IgnoreMatcher:
        """The patterns of an ignore file; none if it does not exist."""
        p = Path(path)
        try:
            text = p.read_bytes().decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            return cls(())
        except OSError as exc:
            raise DockerfileError(f"cannot read: {exc.strerror}", path=str(p)) from None
        return cls.from_lines(text.split("\n"), source=str(p))

    @classmethod
    def for_context(cls, context: str | Path, dockerfile: str | Path | None = None) -> IgnoreMatcher:
        """`<Dockerfile>.dockerignore` beside the Dockerfile if there is one, else the context's."""
        if dockerfile is not None:
            df = Path(dockerfile)
            specific = df.with_name(df.name + ".dockerignore")
            if specific.is_file():
                return cls.from_file(specific)
        return cls.from_file(Path(context) / ".dockerignore")

    def explain(self, rel_path: str) -> Decision:
        path = go_clean(rel_path).lstrip("/")
        if path in (".", ""):
            return Decision(".", False, None)
        parents = _parents(path)
        decider: IgnorePattern | None = None
        for pattern in self.patterns:
            if pattern.match(path) or any(pattern.match(parent) for parent in parents):
                decider = pattern
        return Decision(path, decider is not None and not decider.exclusion, decider)

    def matches(self, rel_path: str) -> bool:
        """True if the path is ignored (left out of the build context)."""
        return self.explain(rel_path).ignored

    def evaluate(self, rel_path: str, parent_bits: tuple[bool, ...] | None) -> tuple[bool, tuple[bool, ...]]:
        """For walkers: ignored or not, given the per-pattern results of the parent directory (None
        at the top); returns this path's bits to pass to its children. Same answer as `matches`."""
        bits: list[bool] = []
        decided: IgnorePattern | None = None
        for i, pattern in enumerate(self.patterns):
            hit = (parent_bits is not None and parent_bits[i]) or pattern.match(rel_path)
            bits.append(hit)
            if hit:
                decided = pattern
        return decided is not None and not decided.exclusion, tuple(bits)

    def __bool__(self) -> bool:
        return bool(self.patterns)


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
