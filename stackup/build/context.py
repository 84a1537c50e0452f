"""The build context: what COPY and ADD may read, and a content digest of what they read.

Paths in a Dockerfile are relative to the context root; an absolute path means the same (`/src` is
`<context>/src`). `..` that climbs out of the root is refused, and so is a symlink on the way to a
source (or the source itself) that points outside the context; symlinks that stay inside are
followed, an absolute target being read relative to the context root (as BuildKit's scoped
filesystem reads it). Inside a copied directory, symlinks are copied as links, not followed.

Globs (`*`, `?`, `[...]`) match one path element each; a glob that matches nothing, or a source
that does not exist or is excluded by .dockerignore, is an error naming the source.

The digest covers, for every entry a source reads, its path, type, permission bits and content
(a symlink: its target) and never the mtime, so a touched but unchanged file is a cache hit.
Hashing is fast on a rebuild: file contents are hashed once per (device, inode, size, mtime_ns,
ctime_ns) and remembered in a `StatCache`, which can be saved between runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackup.build.dockerfile.gotext import go_clean
from stackup.build.ignore import IgnoreMatcher

_GLOB = frozenset("*?[")
_MAX_LINKS = 255


class ContextError(ValueError):
    """A source the context cannot provide; the caller locates it at the instruction."""


@dataclass(frozen=True)
class Entry:
    """One thing a source reads: a context-relative path and what it is."""

    path: str
    kind: str  # "file", "dir", "symlink"
    mode: int
    digest: str  # sha256 of the content (file), the link target (symlink), "" (dir)


class StatCache:
    """File content digests keyed by stat identity, so unchanged files are not read again.
    Thread-safe; `save`/`load` keep it across runs (a stale entry can only miss, since the key
    changes with the file)."""

    def __init__(self) -> None:
        self._digests: dict[str, str] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(st: os.stat_result) -> str:
        return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"

    def file_digest(self, path: str, st: os.stat_result) -> str:
        key = self._key(st)
        with self._lock:
            found = self._digests.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = h.hexdigest()
        with self._lock:
            self._digests[key] = digest
        return digest

    def save(self, path: str | Path) -> None:
        tmp = Path(f"{path}.tmp")
        with self._lock:
            tmp.write_text(json.dumps(self._digests))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> StatCache:
        cache = cls()
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return cache
        if isinstance(data, dict):
            cache._digests = {str(k): str(v) for k, v in data.items()}
        return cache


class BuildContext:
    """A directory sent to the builder, seen through its .dockerignore."""

    def __init__(self, root: str | Path, ignore: IgnoreMatcher | None = None,
                 stat_cache: StatCache | None = None) -> None:
        self.root = Path(root).resolve()
        self.ignore = ignore or IgnoreMatcher(())
        self.stat_cache = stat_cache or StatCache()

    def _abs(self, rel: str) -> str:
        return str(self.root) if rel == "." else os.path.join(self.root, rel)

    def _resolve_links(self, rel: str, source: str) -> str:
        """Follow symlinks along `rel` inside the context; refuse any that leaves it."""
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if not done:
                    raise ContextError(f"{source}: a symlink leads outside the build context")
                done.pop()
                continue
            candidate = "/".join((*done, part))
            full = self._abs(candidate)
            if os.path.islink(full):
                hops += 1
                if hops > _MAX_LINKS:
                    raise ContextError(f"{source}: too many levels of symbolic links")
                target = os.readlink(full)
                if target.startswith("/"):
                    raise ContextError(f"{source}: symlink {candidate} -> {target} points outside the build "
                                       "context (absolute target)")
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            done.append(part)
        return "/".join(done) or "."

    def resolve(self, source: str) -> list[str]:
        """The context-relative paths a COPY/ADD source names (globs expanded, links resolved)."""
        cleaned = go_clean(source)
        if cleaned.startswith("/"):
            cleaned = cleaned.lstrip("/") or "."
        if cleaned == ".." or cleaned.startswith("../"):
            raise ContextError(f"{source}: outside the build context (forbidden path)")
        if not any(c in _GLOB for c in cleaned):
            rel = self._resolve_links(cleaned, source)
            if not os.path.lexists(self._abs(rel)) or (rel != "." and self.ignore.matches(rel)):
                raise ContextError(f"{source}: not found in the build context")
            return [rel]
        matches = sorted(self._glob(cleaned.split("/"), "."))
        if not matches:
            raise ContextError(f"{source}: no source files were specified (the pattern matches nothing)")
        return [self._resolve_links(m, source) for m in matches]

    def _glob(self, parts: list[str], base: str) -> Iterator[str]:
        head, rest = parts[0], parts[1:]
        base_abs = self._abs(self._resolve_links(base, base))
        if any(c in _GLOB for c in head):
            try:
                names = sorted(os.listdir(base_abs))
            except OSError:
                return
            hits = [n for n in names if _glob_match(head, n)]
        else:
            hits = [head] if os.path.lexists(os.path.join(base_abs, head)) else []
        for name in hits:
            rel = name if base == "." else f"{base}/{name}"
            if self.ignore.matches(rel):
                continue
            if rest:
                yield from self._glob(rest, rel)
            else:
                yield rel

    def entries(self, rel: str, excludes: Sequence[str] = ()) -> Iterator[Entry]:
        """Everything under `rel` (itself included) that the context provides, depth first with
        the names of each directory sorted (a stable order, which is all the digest needs)."""
        exclude = IgnoreMatcher.from_lines(excludes, source="--exclude") if excludes else None
        ignore = self.ignore if self.ignore.patterns else None
        top = rel
        start_bits = _parent_bits(ignore, rel) if ignore is not None and rel != "." else None
        stack: list[tuple[str, tuple[bool, ...] | None]] = [(rel, start_bits)]
        root = str(self.root)
        while stack:
            rel, bits = stack.pop()
            full = root if rel == "." else f"{root}/{rel}"
            st = os.lstat(full)
            ignored = False
            if ignore is not None and rel != ".":
                ignored, bits = ignore.evaluate(rel, bits)
            inner = rel if top == "." else rel[len(top) + 1 :]
            if exclude is not None and rel != top and exclude.matches(inner):
                continue
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                if ignored and not self.ignore.has_exclusions:
                    continue
                if not ignored:
                    yield Entry(rel, "dir", stat.S_IMODE(mode), "")
                prefix = "" if rel == "." else rel + "/"
                stack.extend((prefix + name, bits) for name in sorted(os.listdir(full), reverse=True))
            elif ignored:
                continue
            elif stat.S_ISLNK(mode):
                yield Entry(rel, "symlink", 0o777, hashlib.sha256(os.readlink(full).encode()).hexdigest())
            elif stat.S_ISREG(mode):
                yield Entry(rel, "file", stat.S_IMODE(mode), self.stat_cache.file_digest(full, st))
            else:
                raise ContextError(f"{rel}: not a regular file, directory or symlink")

    def digest(self, sources: Sequence[str], excludes: Sequence[str] = ()) -> str:
        """sha256 over everything the sources read (path, type, mode, content; never mtime)."""
        h = hashlib.sha256()
        for source in sources:
            for rel in self.resolve(source):
                h.update(f"source {rel}\n".encode("utf-8", "surrogateescape"))
                for entry in self.entries(rel, excludes):
                    h.update(f"{entry.kind} {entry.mode:o} {entry.digest} {entry.path}\n".encode(
                        "utf-8", "surrogateescape"))
        return h.hexdigest()


def _parent_bits(ignore: IgnoreMatcher | None, rel: str) -> tuple[bool, ...] | None:
    bits: tuple[bool, ...] | None = None
    if ignore is None:
        return None
    parts = rel.split("/")
    for i in range(1, len(parts)):
        _, bits = ignore.evaluate("/".join(parts[:i]), bits)
    return bits


def _glob_match(pattern: str, name: str) -> bool:
    """One path element against a Go `filepath.Match` pattern: `*`, `?`, `[a-z]`, `[^a-z]`, `\\x`
    (no shell rule about leading dots; `!` is not a negation)."""
    regex = _ELEMENT_CACHE.get(pattern)
    if regex is None:
        regex = _ELEMENT_CACHE[pattern] = re.compile(_element_regex(pattern), re.DOTALL)
    return regex.fullmatch(name) is not None


_ELEMENT_CACHE: dict[str, re.Pattern[str]] = {}


def _element_regex(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            cls = ["["]
            if i < n and pattern[i] == "^":
                cls.append("^")
                i += 1
            while i < n and (pattern[i] != "]" or len(cls) == 1 or cls[-1] == "^"):
                ch = pattern[i]
                if ch == "\\" and i + 1 < n:
                    i += 1
                    ch = pattern[i]
                cls.append("-" if ch == "-" and cls[-1] not in ("[", "^") else re.escape(ch))
                i += 1
            i += 1
            out.append("".join(cls) + "]")
        else:
            out.append(re.escape(c))
    return "".join(out)
