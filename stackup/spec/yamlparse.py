"""Pass 1: read a stack file into a plain tree plus a `SourceMap`.

ruamel.yaml's round-trip loader is used (not the faster safe loader) because only its nodes carry
line and column for every key and sequence item; that is what lets every later pass say
`compose.yaml:12:7:` instead of "somewhere in services.web". The tree handed on is plain Python
(dict/list/str/int/float/bool/None) so no later pass depends on ruamel types; `!reset` and
`!override` survive as `Tagged` for the merge pass.

Every way a file can be unreadable (missing, a directory, binary, not UTF-8, empty, invalid YAML,
not a mapping at the top) becomes one located line rather than a traceback.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from stackup.spec.errors import KeyPath, Location, Problem, SourceMap, SpecError
from stackup.spec.tree import Tag, Tagged

_TAGS = {"!reset": Tag.RESET, "!override": Tag.OVERRIDE}


@dataclass(slots=True)
class Document:
    """One parsed YAML document: its tree, where each key path was written, and its file."""

    file: Path
    display: str
    tree: dict[str, Any]
    source_map: SourceMap = field(default_factory=SourceMap)


class _Constructor(RoundTripConstructor):
    """Keeps timestamps as the text the user wrote.

    Compose treats `2024-01-01` as a string (Go's YAML decoder does not build time values for
    untyped targets); turning it into `datetime.date` would change what a label or an
    environment value contains.
    """


_Constructor.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda constructor, node: constructor.construct_scalar(node),
)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    return yaml


def file_error(display: str, message: str, line: int = 0, col: int = 0) -> SpecError:
    """A one-problem `SpecError` about a whole file (or one position in it)."""
    return SpecError([Problem(message=message, location=Location(display, line, col))])


def read_text(path: Path, display: str) -> str:
    """The file's text, or a one-line error saying why it cannot be a stack file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise file_error(display, "no such file") from None
    except IsADirectoryError:
        raise file_error(display, "is a directory, not a stack file") from None
    except PermissionError:
        raise file_error(display, "cannot read: permission denied") from None
    except OSError as exc:
        raise file_error(display, f"cannot read: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise file_error(display, "binary file, not a YAML stack file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise file_error(display, f"not UTF-8 text (byte 0x{data[exc.start]:02x})", line, col) from None


def parse_file(path: Path, display: str | None = None) -> list[Document]:
    """Read and parse `path`; one `Document` per non-empty YAML document in it."""
    shown = display if display is not None else str(path)
    return parse_text(read_text(path, shown), path, shown)


def parse_text(text: str, path: Path, display: str) -> list[Document]:
    """Parse YAML text. Several `---` documents are allowed and later ones override earlier ones."""
    try:
        raw_docs = list(_yaml().load_all(text))
    except MarkedYAMLError as exc:
        raise _yaml_error(display, exc) from None
    except YAMLError as exc:
        raise file_error(display, f"invalid YAML: {exc}") from None
    docs: list[Document] = []
    for raw in raw_docs:
        if raw is None:
            continue
        if not isinstance(raw, CommentedMap):
            kind = "a list" if isinstance(raw, CommentedSeq) else f"a {type(raw).__name__} scalar"
            raise file_error(display, f"top level must be a mapping (services: ...), not {kind}", 1, 1)
        smap = SourceMap()
        smap.add((), Location(display, 1, 1))
        builder = _Builder(display, smap)
        tree = builder.mapping(raw, ())
        if builder.problems:
            raise SpecError(builder.problems)
        docs.append(Document(file=path, display=display, tree=tree, source_map=smap))
    if not docs:
        raise file_error(display, "empty file: a stack file needs at least a `services:` mapping")
    return docs


def _yaml_error(display: str, exc: MarkedYAMLError) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    if exc.context and exc.problem and exc.context_mark is not None:
        ctx = exc.context_mark
        problem = f"{problem} ({exc.context} at line {ctx.line + 1}, column {ctx.column + 1})"
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    kind = "duplicate key" if "duplicate key" in problem else "invalid YAML"
    return file_error(display, f"{kind}: {problem}", line, col)


class _Builder:
    """Converts ruamel nodes to plain values, recording a location for every key path."""

    def __init__(self, display: str, smap: SourceMap) -> None:
        self.display = display
        self.smap = smap
        self.problems: list[Problem] = []

    def _loc(self, line: int, col: int) -> Location:
        return Location(self.display, line + 1, col + 1)

    def _fail(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(message=message, path=path, location=self.smap.locate(path)))

    def mapping(self, node: CommentedMap, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            pos = _key_position(node, key)
            if not isinstance(key, str):
                loc = self._loc(*pos) if pos else self.smap.locate(path)
                self.problems.append(Problem(
                    message=f"mapping keys must be strings, got {key!r}; quote it",
                    path=path, location=loc))
                continue
            child = (*path, key)
            if pos is not None:
                self.smap.add(child, self._loc(*pos))
            out[key] = self.value(value, child)
        return out

    def sequence(self, node: CommentedSeq, path: KeyPath) -> list[Any]:
        out: list[Any] = []
        positions = node.lc.data or {}
        for index, item in enumerate(node):
            child = (*path, index)
            pos = positions.get(index)
            if pos is not None:
                self.smap.add(child, self._loc(pos[0], pos[1]))
            out.append(self.value(item, child))
        return out

    def value(self, node: Any, path: KeyPath) -> Any:
        tag = _tag_of(node)
        if tag is not None:
            if tag not in _TAGS:
                self._fail(path, f"unknown YAML tag {tag} (only !reset and !override are supported)")
                return None
            inner = node.value if isinstance(node, TaggedScalar) else self._untagged(node, path)
            return Tagged(_TAGS[tag], inner)
        return self._untagged(node, path)

    def _untagged(self, node: Any, path: KeyPath) -> Any:
        if isinstance(node, CommentedMap):
            return self.mapping(node, path)
        if isinstance(node, CommentedSeq):
            return self.sequence(node, path)
        return _scalar(node)


def _tag_of(node: Any) -> str | None:
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", None)
    if isinstance(value, str) and value.startswith("!") and not value.startswith("!!"):
        return value
    return None


def _scalar(node: Any) -> Any:
    """ruamel's scalar subclasses (ScalarInt, ScalarFloat, ...) to the plain builtin type."""
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime.date):
        return node.isoformat()
    return str(node)


def _key_position(node: CommentedMap, key: Any) -> tuple[int, int] | None:
    """Where `key` was written; keys pulled in by `<<: *anchor` are found in the anchor's map."""
    data = (node.lc.data or {}).get(key)
    if data is not None:
        return int(data[0]), int(data[1])
    for source in getattr(node, "merge", ()):
        if isinstance(source, CommentedMap) and key in source:
            found = _key_position(source, key)
            if found is not None:
                return found
    return None

