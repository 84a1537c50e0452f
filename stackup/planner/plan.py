"""The plan: operations with causes, on a graph whose edges say what must happen first.

A `Plan` is data. `reconcile` builds it without touching an engine, `execute` walks it without
deciding anything, and `str(plan)` is the contract between them and the user: it is the output of
`stackup plan`, the debug log, and the golden format of planner tests. It is therefore fully
deterministic: operations are listed in a topological order that breaks ties by resource kind
(networks, volumes, images, services) and then by name.

Edges run from prerequisite to dependent (execution order). An edge between two service operations
also carries the dependent's `depends_on` condition, so `execute` knows to wait for "healthy" or
"completed successfully" and not merely "done".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import networkx as nx

from stackup.planner.changes import Change
from stackup.planner.toposort import lexicographic_order
from stackup.runtime.base import BuildSpec, ContainerSpec, NetworkSpec, PullSpec, VolumeSpec

if TYPE_CHECKING:
    from stackup.spec.models import DependsCondition


class OpKind(StrEnum):
    """What an operation does. `NOTHING` is kept in the plan so it can say *why* nothing happens."""

    CREATE = "create"
    RECREATE = "recreate"
    START = "start"
    RESTART = "restart"
    STOP = "stop"
    REMOVE = "remove"
    PULL = "pull"
    BUILD = "build"
    NOTHING = "nothing"


class ResourceKind(StrEnum):
    """What an operation acts on; the order here is the tie-break order of `str(plan)`."""

    NETWORK = "network"
    VOLUME = "volume"
    IMAGE = "image"
    SERVICE = "service"


_KIND_RANK = {kind: i for i, kind in enumerate(ResourceKind)}

Spec = ContainerSpec | NetworkSpec | VolumeSpec | BuildSpec | PullSpec


@dataclass(frozen=True, slots=True)
class Operation:
    """One step. `name` is the resource as the user thinks of it (`demo_default`, `web-1`).

    `cause` is a short reason in the user's words ("not found", "orphan"); `changes` are the field
    differences behind a recreate. `container` is the existing container acted on (stop, remove,
    recreate); `spec` is what to create.
    """

    kind: OpKind
    resource: ResourceKind
    name: str
    cause: str = ""
    changes: tuple[Change, ...] = ()
    service: str | None = None
    number: int | None = None
    container: str | None = None
    spec: Spec | None = None
    id: str = field(init=False, repr=False, compare=False)
    """Unique key of the operation in its plan: one operation per resource (`service:web-1`)."""

    def __post_init__(self) -> None:
        # computed once, by concatenation: plans of large stacks look it up for every edge, and
        # formatting a StrEnum in an f-string goes through the slow Enum.__format__
        object.__setattr__(self, "id", self.resource + ":" + self.name)

    @property
    def changes_state(self) -> bool:
        return self.kind is not OpKind.NOTHING

    def reasons(self) -> list[str]:
        """Cause and changes as lines: `(cause)` first when there is one, then each changed field."""
        out = [f"({self.cause})"] if self.cause else []
        out.extend(str(c) for c in self.changes)
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": str(self.kind),
            "resource": str(self.resource),
            "name": self.name,
            "cause": self.cause,
            "changes": [c.to_json() for c in self.changes],
        }
        if self.service is not None:
            out["service"] = self.service
            out["number"] = self.number
        if self.container is not None:
            out["container"] = self.container
        return out


@dataclass(frozen=True, slots=True)
class Wait:
    """What an edge between two service operations waits for (from the dependent's depends_on)."""

    condition: DependsCondition
    required: bool = True


class Plan:
    """Operations on a frozen `nx.DiGraph` (node = `Operation.id`, attribute `op`; edge attribute `wait`)."""

    def __init__(self, project: str, graph: nx.DiGraph, warnings: tuple[str, ...] = ()) -> None:
        self.project = project
        self.graph = nx.freeze(graph)
        self.warnings = warnings
        self._order: list[Operation] = _ordered(graph)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def op(self, op_id: str) -> Operation:
        operation: Operation = self.graph.nodes[op_id]["op"]
        return operation

    def prerequisites(self, op_id: str) -> Mapping[str, Wait | None]:
        """Operations that must finish before `op_id`, each with the condition to wait for, if any."""
        return {pred: self.graph.edges[pred, op_id].get("wait") for pred in self.graph.predecessors(op_id)}

    @property
    def has_changes(self) -> bool:
        return any(op.changes_state for op in self._order)

    def __str__(self) -> str:
        """One line per operation: `<kind> <name>  <op>  <cause or first change>`, columns aligned.

        Further changes follow on their own lines under the first, then `warning:` lines.
        """
        lines = [] if self._order else ["(nothing to do)"]
        if self._order:
            kind_w = max(len(op.resource) for op in self._order)
            name_w = max(len(op.name) for op in self._order)
            op_w = max(len(op.kind) for op in self._order)
            indent = " " * (kind_w + name_w + op_w + 5)
            for op in self._order:
                head = f"{op.resource:<{kind_w}} {op.name:<{name_w}}  {op.kind:<{op_w}}"
                reasons = op.reasons() or [""]
                lines.append(f"{head}  {reasons[0]}".rstrip())
                lines.extend(indent + r for r in reasons[1:])
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON: operations in `str(plan)` order, each with the ids it waits for."""
        ops = []
        for op in self._order:
            item = op.to_json()
            item["after"] = sorted(self.graph.predecessors(op.id))
            ops.append(item)
        return {
            "project": self.project,
            "has_changes": self.has_changes,
            "operations": ops,
            "warnings": list(self.warnings),
        }


def _ordered(graph: nx.DiGraph) -> list[Operation]:
    """Operations in dependency order, ties broken by (resource kind, natural name)."""
    ops: dict[str, Operation] = dict(graph.nodes(data="op"))
    keys = {n: (_KIND_RANK[op.resource], _natural(op.name), n) for n, op in ops.items()}
    return [ops[n] for n in lexicographic_order(graph.succ, keys.__getitem__)]


def _natural(name: str) -> str:
    """Sort key that puts `web-2` before `web-10`: digit runs are zero-padded."""
    return _DIGITS.sub(_pad, name)


_DIGITS: Final = re.compile(r"\d+")


def _pad(match: re.Match[str]) -> str:
    return match.group().zfill(8)
