"""Pass 1: read a stack file into a plain tree plus a `SourceMap`.

The YAML is *composed* into nodes by ruamel.yaml's C parser (ruamel.yaml.clib) and the nodes are
turned into plain Python here: every node carries its line and column, which is what lets every
later pass say `compose.yaml:12:7:` instead of "somewhere in services.web", and the C composer is
about ten times faster than the round-trip loader (a 500-service stack parses in ~0.15 s instead
of ~1.5 s). Anchors, aliases and `<<` merge keys are resolved here; `!reset` and `!override`
survive as `Tagged` for the merge pass. On a syntax error the pure-Python parser runs again, only
for its clearer message.

Every way a file can be unreadable (missing, a directory, binary, not UTF-8, empty, invalid YAML,
not a mapping at the top) becomes one located line rather than a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import BaseConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

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


MAX_FILE_BYTES = 4 * 2**20
"""A stack file larger than this is refused before parsing. Real ones are kilobytes; loading
costs about 140 bytes of memory per byte of YAML (measured: 11 MiB took 1.6 GB and two minutes),
so this bounds a load to about 600 MB."""

MAX_DEPTH = 64
"""Deepest nesting accepted. Compose files nest about ten levels; every later pass recurses, so
a file nested ten thousand levels deep must be refused here, located, not by a RecursionError."""

ALIAS_BUDGET = 100_000
"""Values that aliases (and `<<` merges) may add beyond ten per distinct node: a file of a few
kilobytes must not expand into billions of values ("billion laughs")."""

_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_LEGACY_OCTAL = re.compile(r"[-+]?0[0-7]+")
"""`0440` is octal to Compose (Go's YAML decoder parses integers with base prefixes, a leading 0
included), so a file mode written as in every Compose example means 0o440, not 440."""


def _composer(pure: bool) -> YAML:
    return YAML(typ="safe", pure=pure)


def file_error(display: str, message: str, line: int = 0, col: int = 0) -> SpecError:
    """A one-problem `SpecError` about a whole file (or one position in it)."""
    return SpecError([Problem(message=message, location=Location(display, line, col))])


def read_text(path: Path, display: str) -> str:
    """The file's text, or a one-line error saying why it cannot be a stack file."""
    try:
        with path.open("rb") as handle:  # bounded: `-f /dev/zero` must not read forever
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise file_error(display, "no such file") from None
    except IsADirectoryError:
        raise file_error(display, "is a directory, not a stack file") from None
    except PermissionError:
        raise file_error(display, "cannot read: permission denied") from None
    except OSError as exc:
        raise file_error(display, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise file_error(display, f"file is larger than {MAX_FILE_BYTES // 2**20} MiB, the limit for "
                                  f"stack files")
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
    deep = _flow_too_deep(text)
    if deep is not None:
        raise file_error(display, f"nested deeper than {MAX_DEPTH} levels", *deep)
    try:
        nodes = list(_composer(pure=False).compose_all(text))
    except YAMLError:
        nodes = _compose_for_message(text, display)
    except RecursionError:
        raise _too_deep(text, display) from None
    docs: list[Document] = []
    problems: list[Problem] = []
    constructor = _composer(pure=True).constructor  # for int/float/bool scalars only
    for node in nodes:
        if node is None:
            continue
        if not isinstance(node, MappingNode):
            kind = "a list" if isinstance(node, SequenceNode) else "a str scalar"
            raise file_error(display, f"top level must be a mapping (services: ...), not {kind}", 1, 1)
        smap = SourceMap()
        smap.add((), Location(display, 1, 1))
        builder = _Builder(display, smap, constructor)
        tree = builder.mapping(node, ())
        problems.extend(builder.problems)  # a later `---` document is still checked
        docs.append(Document(file=path, display=display, tree=tree, source_map=smap))
    if problems:
        raise SpecError(problems)
    if not docs:
        raise file_error(display, "empty file: a stack file needs at least a `services:` mapping")
    return docs


def _compose_for_message(text: str, display: str) -> list[Node | None]:
    """The C parser (libyaml, YAML 1.1) refused `text`: compose it with the pure parser.

    That one also accepts YAML 1.2 that libyaml does not (`ports: [8080:80]`, a plain scalar
    with a colon in a flow sequence, which Compose accepts), and it words errors more clearly.
    """
    try:
        return list(_composer(pure=True).compose_all(text))
    except RecursionError:
        raise _too_deep(text, display) from None
    except MarkedYAMLError as exc:
        raise _yaml_error(display, exc) from None
    except YAMLError as exc:
        raise file_error(display, f"invalid YAML: {exc}") from None


_FLOW_TOKENS = re.compile(r"[\[\]{}]" r"|#[^\n]*" r"|'[^'\n]*'" r'|"(?:[^"\\\n]|\\.)*"')


def _flow_too_deep(text: str) -> tuple[int, int] | None:
    """Where flow brackets (`[`, `{`) first nest deeper than `MAX_DEPTH`, or None.

    Checked on the text, before libyaml: its composer recurses in C once per level, and forty
    thousand `[` (an 80 kB file) overflowed the C stack and killed the process; deep flow
    mappings also parse in quadratic time. Quoted scalars and comments are skipped; a bracket
    inside a plain or block scalar may be counted, which matters only past 64 unclosed ones.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    depth = 0
    for token in _FLOW_TOKENS.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                at = token.start()
                return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
        elif char in "]}":
            depth = max(depth - 1, 0)
    return None


def _too_deep(text: str, display: str) -> SpecError:
    """The composer ran out of stack: find, from the event stream (flat, no recursion), where
    the nesting first goes deeper than `MAX_DEPTH`."""
    depth = 0
    try:
        for event in _composer(pure=False).parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return file_error(display, f"nested deeper than {MAX_DEPTH} levels",
                                      mark.line + 1, mark.column + 1)
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        pass
    return file_error(display, f"nested deeper than {MAX_DEPTH} levels")


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
    """Converts composed nodes to plain values, recording a location for every key path."""

    def __init__(self, display: str, smap: SourceMap, constructor: BaseConstructor) -> None:
        self.display = display
        self.smap = smap
        self.constructor = constructor
        self.problems: list[Problem] = []
        self._built = 0
        self._distinct: set[int] = set()

    def _loc(self, node: Node) -> Location:
        return Location(self.display, node.start_mark.line + 1, node.start_mark.column + 1)

    def _position(self, node: Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _fail(self, path: KeyPath, message: str, node: Node | None = None) -> None:
        loc = self._loc(node) if node is not None else self.smap.locate(path)
        self.problems.append(Problem(message=message, path=path, location=loc))

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.extend(self._merge_sources(value_node, path))
                continue
            key = self.scalar(key_node) if isinstance(key_node, ScalarNode) else key_node
            if not isinstance(key, str):
                self._fail(path, f"mapping keys must be strings, got {key!r}; quote it", key_node)
                continue
            child = (*path, key)
            if key in out:
                first = self.smap.entries.get(child)
                self._fail(child, f'duplicate key: "{key}" is already defined'
                           + (f" at line {first.line}" if first else ""), key_node)
                continue
            self.smap.add(child, self._loc(key_node))
            out[key] = self.value(value_node, child)
        for key_node, value_node in merged:  # `<<` keys never override explicit ones
            key = self.scalar(key_node)
            if isinstance(key, str) and key not in out:
                self.smap.add((*path, key), self._loc(key_node))
                out[key] = self.value(value_node, (*path, key))
        return out

    def _merge_sources(self, node: Node, path: KeyPath) -> list[tuple[Node, Node]]:
        """Key/value pairs a `<<` brings in: one mapping, or a list where earlier maps win."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        pairs: list[tuple[Node, Node]] = []
        for source in sources:
            if not isinstance(source, MappingNode):
                self._fail(path, "`<<` merges mappings only (an alias of a mapping, or a list of them)", node)
                continue
            for key_node, value_node in source.value:
                if key_node.tag == _MERGE:
                    pairs.extend(self._merge_sources(value_node, path))
                else:
                    pairs.append((key_node, value_node))
        return pairs

    def sequence(self, node: SequenceNode, path: KeyPath) -> list[Any]:
        out: list[Any] = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            self.smap.add(child, self._loc(item))
            out.append(self.value(item, child))
        return out

    def value(self, node: Node, path: KeyPath) -> Any:
        self._built += 1
        self._distinct.add(id(node))
        if self._built > ALIAS_BUDGET + 10 * len(self._distinct):
            raise file_error(self.display, f"aliases expand to more than {self._built} values (a YAML "
                                           f"alias bomb?); write the values out or use fewer aliases",
                             *self._position(node))
        if len(path) > MAX_DEPTH:
            raise file_error(self.display, f"nested deeper than {MAX_DEPTH} levels", *self._position(node))
        tag = node.tag if isinstance(node.tag, str) else str(node.tag)
        if tag.startswith("!") and not tag.startswith("!!"):
            if tag not in _TAGS:
                self._fail(path, f"unknown YAML tag {tag} (only !reset and !override are supported)")
                return None
            inner = node.value if isinstance(node, ScalarNode) else self._untagged(node, path)
            return Tagged(_TAGS[tag], inner)
        return self._untagged(node, path)

    def _untagged(self, node: Node, path: KeyPath) -> Any:
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            return self.sequence(node, path)
        return self.scalar(node)

    def scalar(self, node: Node) -> Any:
        """A scalar as Compose reads it; timestamps stay the text the user wrote.

        Compose treats `2024-01-01` as a string (Go's YAML decoder does not build time values for
        untyped targets); a `datetime.date` would change what a label or environment value holds.
        """
        tag = str(node.tag)
        if tag in (_STR, _TIMESTAMP) or not isinstance(node, ScalarNode):
            return node.value
        if tag == _NULL:
            return None
        if tag == _INT and _LEGACY_OCTAL.fullmatch(node.value):
            return int(node.value, 8)
        if tag in (_BOOL, _INT, _FLOAT):
            return self.constructor.construct_object(node, deep=True)
        return node.value
