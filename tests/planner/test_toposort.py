"""`lexicographic_order`: the order networkx's lexicographical topological sort gives."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from stackup.planner.toposort import CycleFound, lexicographic_order


def test_dependencies_first_and_ties_by_key() -> None:
    successors = {"db": ["api", "worker"], "cache": ["api"], "api": ["web"], "worker": [], "web": []}
    assert lexicographic_order(successors, str) == ["cache", "db", "api", "web", "worker"]
    assert lexicographic_order(successors, lambda n: -len(n)) == ["cache", "db", "worker", "api", "web"]


@pytest.mark.parametrize("seed", range(5))
def test_matches_networkx_on_random_dags(seed: int) -> None:
    rng = random.Random(seed)
    graph = nx.DiGraph()
    graph.add_nodes_from(f"n{i}" for i in range(60))
    graph.add_edges_from(
        (f"n{a}", f"n{b}") for a, b in (sorted(rng.sample(range(60), 2)) for _ in range(150))
    )

    def key(n: str) -> tuple[int, str]:  # unique keys: equal ones are ordered differently
        return int(n[1:]) % 7, n

    ours = lexicographic_order({n: list(graph.succ[n]) for n in graph}, key)
    assert ours == list(nx.lexicographical_topological_sort(graph, key=key))


def test_a_cycle_is_reported() -> None:
    with pytest.raises(CycleFound, match="2 nodes"):
        lexicographic_order({"a": ["b"], "b": ["a"], "c": []}, str)
