"""Dependency cycles, found in one place for the loader's checks and the planner's defence.

The common case, no cycle, is settled by the standard library's topological sorter; networkx (a
fifth of a second to import) is loaded only to describe the cycles that exist. Each cycle is
named from its smallest service, so the same stack always reports the same cycle.
"""

from __future__ import annotations

from collections.abc import Iterable


def find_cycles(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """One cycle per strongly connected component (a list of services, not closed), sorted."""
    import graphlib

    names = sorted(set(nodes))
    pairs = sorted(set(edges))
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in names:
        sorter.add(name)
    for u, v in pairs:
        sorter.add(u, v)
    try:
        sorter.prepare()
        return []
    except graphlib.CycleError:
        pass
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    graph.add_edges_from(pairs)
    found: list[list[str]] = []
    components = sorted((sorted(c) for c in nx.strongly_connected_components(graph)), key=lambda c: c[0])
    for component in components:
        if len(component) == 1 and not graph.has_edge(component[0], component[0]):
            continue
        cycle = [u for u, _ in nx.find_cycle(graph.subgraph(component), source=component[0])]
        start = cycle.index(min(cycle))
        found.append(cycle[start:] + cycle[:start])
    return found
