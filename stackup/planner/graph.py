"""The service graph: who depends on whom, and on what condition.

Edges run dependent -> dependency (`web -> db`), as `depends_on` reads. Implicit dependencies are
folded into the same edge set so there is one walker, not two: `network_mode: service:x`,
`volumes_from: [x]` and `links: [x]` all need `x` created first, so they become edges with the
condition `service_started` (an explicit `depends_on` entry for the same pair wins). Dependencies on
services absent from the project (profile-disabled with `required: false`) have no edge; the loader
reports the required ones.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, assert_never

import networkx as nx

from stackup.planner.toposort import CycleFound, lexicographic_order
from stackup.spec.cycles import find_cycles
from stackup.spec.errors import DependencyCycle, Problem, SourceMap
from stackup.spec.implicit import implicit_refs_of
from stackup.spec.kinds import DependsCondition

if TYPE_CHECKING:
    from stackup.spec.models import Project, Service


class DepKind(StrEnum):
    """Where an edge came from, so `stackup graph` and cycle errors can point at the right key."""

    DEPENDS_ON = "depends_on"
    NETWORK_MODE = "network_mode"
    VOLUMES_FROM = "volumes_from"
    LINKS = "links"
    NAMESPACE = "namespace"  # ipc, pid, uts or cgroup: service:x


_VIA = {"network_mode": DepKind.NETWORK_MODE, "volumes_from": DepKind.VOLUMES_FROM, "links": DepKind.LINKS}


class GraphFormat(StrEnum):
    TEXT = "text"
    DOT = "dot"
    MERMAID = "mermaid"
    JSON = "json"


class DepEdge(NamedTuple):
    """One dependency of a service: what it waits for, and where the edge came from.

    A NamedTuple rather than a frozen dataclass: a large stack makes thousands of these per plan,
    and a frozen dataclass's `__init__` costs several times a tuple's."""

    condition: DependsCondition
    required: bool
    restart: bool
    via: DepKind


Dependencies = dict[str, dict[str, DepEdge]]
"""dependent -> {dependency: edge}, for every service (services without dependencies map to {})."""


def dependencies(project: Project) -> Dependencies:
    """Every service's dependencies, explicit `depends_on` winning over implicit ones.

    The planner's hot path works on this plain index (a 1,000-service reconcile spent a fifth of
    its time building and walking a networkx graph); `service_graph` is the same edges as a
    DiGraph for rendering and cycle reports.
    """
    out: Dependencies = {}
    for name in sorted(project.services):
        service = project.services[name]
        edges: dict[str, DepEdge] = {}
        if service.network_mode or service.volumes_from or service.links or service.ipc or service.pid \
                or service.uts or service.cgroup:
            for dep, via in _implicit_deps(service):
                if dep in project.services and dep != name:
                    edges[dep] = DepEdge(DependsCondition.STARTED, required=True, restart=False, via=via)
        for dep in sorted(service.depends_on):
            if dep in project.services:
                spec = service.depends_on[dep]
                edges[dep] = DepEdge(spec.condition, spec.required, spec.restart, DepKind.DEPENDS_ON)
        out[name] = edges
    return out


def service_graph(project: Project, deps: Dependencies | None = None) -> nx.DiGraph:
    """A DiGraph of service names; edge attributes `condition`, `required`, `restart`, `via`."""
    graph = nx.DiGraph(project=project.name)
    deps = dependencies(project) if deps is None else deps
    graph.add_nodes_from(deps)
    graph.add_edges_from(
        (name, dep, {"condition": e.condition, "required": e.required, "restart": e.restart, "via": e.via})
        for name, edges in deps.items()
        for dep, e in edges.items()
    )
    return graph


def dependency_order(project: Project, deps: Dependencies) -> list[str]:
    """Services, dependencies first, ties broken by name (the order `start_order` gives).

    Raises `DependencyCycle` naming the cycle (found again on the DiGraph for the message).
    """
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    for name, edges in deps.items():
        for dep in edges:
            dependents[dep].append(name)
    try:
        return lexicographic_order(dependents, str)
    except CycleFound:
        check_acyclic(service_graph(project, deps))
        raise


def _implicit_deps(service: Service) -> Iterable[tuple[str, DepKind]]:
    for ref in implicit_refs_of(service):
        yield ref.service, _VIA.get(ref.key, DepKind.NAMESPACE)


def check_acyclic(graph: nx.DiGraph, source_map: SourceMap | None = None) -> None:
    """Raise `DependencyCycle` naming the cycle, located at the key that closes each hop.

    The search starts from sorted nodes so the same stack always reports the same cycle (as
    compose-go does, for reproducible messages and tests).
    """
    found = find_cycles(graph.nodes, graph.edges)
    if not found:
        return
    cycle = [*found[0], found[0][0]]
    edges = list(itertools.pairwise(cycle))
    text = " -> ".join(cycle)
    problems = []
    for a, b in edges:
        path = ("services", a, str(graph.edges[a, b]["via"]), b)
        loc = source_map.locate(path) if source_map is not None else None
        problems.append(Problem(message=f"dependency cycle: {text}", path=path, location=loc))
    raise DependencyCycle(cycle, problems[:1] if source_map is None else problems)


def with_dependencies(deps: Dependencies, services: Iterable[str]) -> set[str]:
    """`services` plus everything they depend on, transitively."""
    out: set[str] = set()
    stack = list(services)
    while stack:  # one walk for all sources: each node is visited once, not once per source
        name = stack.pop()
        if name not in out:
            out.add(name)
            stack.extend(deps[name])
    return out


def start_order(graph: nx.DiGraph) -> list[str]:
    """Services, dependencies first, ties broken by name (deterministic).

    Raises `DependencyCycle` (via `check_acyclic`) for a cyclic graph, so callers need not check
    first: the sort finds a cycle anyway, and the second walk is only paid for the error message.
    """
    try:
        return list(nx.lexicographical_topological_sort(graph.reverse(copy=False)))  # names sort as str
    except nx.NetworkXUnfeasible:
        check_acyclic(graph)
        raise


def render(graph: nx.DiGraph, fmt: GraphFormat) -> str:
    """The graph as text, Graphviz DOT, Mermaid or JSON; every edge labelled with its condition."""
    edges = sorted(graph.edges(data=True), key=lambda e: (e[0], e[1]))
    match fmt:
        case GraphFormat.TEXT:
            lines = []
            for name in start_order(graph):
                deps = [f"{b} ({_label(d)})" for a, b, d in edges if a == name]
                lines.append(f"{name} -> {', '.join(deps)}" if deps else name)
            return "\n".join(lines) + "\n"
        case GraphFormat.DOT:
            lines = [f"digraph {json.dumps(graph.graph.get('project', 'stack'))} {{", "  rankdir=LR;"]
            lines += [f"  {json.dumps(n)};" for n in sorted(graph.nodes)]
            lines += [
                f"  {json.dumps(a)} -> {json.dumps(b)} [label={json.dumps(_label(d))}"
                + ("" if d["required"] else ", style=dashed")
                + "];"
                for a, b, d in edges
            ]
            return "\n".join([*lines, "}"]) + "\n"
        case GraphFormat.MERMAID:
            ids = {n: f"s{i}" for i, n in enumerate(sorted(graph.nodes))}
            lines = ["graph TD"] + [f'  {ids[n]}["{n}"]' for n in sorted(graph.nodes)]
            lines += [
                f"  {ids[a]} {'-->' if d['required'] else '-.->'}|{_label(d)}| {ids[b]}" for a, b, d in edges
            ]
            return "\n".join(lines) + "\n"
        case GraphFormat.JSON:
            data = {
                "project": graph.graph.get("project"),
                "services": start_order(graph),
                "edges": [
                    {
                        "from": a,
                        "to": b,
                        "condition": str(d["condition"]),
                        "required": d["required"],
                        "restart": d["restart"],
                        "via": str(d["via"]),
                    }
                    for a, b, d in edges
                ],
            }
            return json.dumps(data, indent=2) + "\n"
        case _:
            assert_never(fmt)


def _label(data: dict[str, object]) -> str:
    parts = [str(data["condition"])]
    if data["via"] != DepKind.DEPENDS_ON:
        parts.append(f"via {data['via']}")
    if not data["required"]:
        parts.append("optional")
    if data["restart"]:
        parts.append("restart")
    return ", ".join(parts)
