"""Dependency order with deterministic tie-breaks, on plain mappings.

What `networkx.lexicographical_topological_sort` computes (Kahn's algorithm, ready nodes taken
smallest key first), without a graph object: `reconcile` orders a 1,000-service stack twice per
plan (services, then operations), and networkx's or graphlib's per-node overhead was a tenth of
the whole reconcile. Cycles are only detected here; the caller explains them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

N = TypeVar("N", bound=Hashable)


class CycleFound(ValueError):
    """Some nodes could not be ordered: they lie on or behind a cycle."""


def lexicographic_order(successors: Mapping[N, Iterable[N]], key: Callable[[N], Any]) -> list[N]:
    """Every node after all its predecessors; among nodes ready at once, the smallest `key` first
    (nodes with equal keys in the order they became ready; networkx uses insertion order).

    `successors` must name every node as a key (nodes without successors map to an empty
    iterable). Raises `CycleFound` when a cycle leaves nodes unordered.
    """
    indegree = dict.fromkeys(successors, 0)
    for targets in successors.values():
        for node in targets:
            indegree[node] += 1
    heap = [(key(n), i, n) for i, n in enumerate(n for n, d in indegree.items() if d == 0)]
    heapq.heapify(heap)
    order: list[N] = []
    tie = len(heap)
    while heap:
        node = heapq.heappop(heap)[2]
        order.append(node)
        for nxt in successors[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                tie += 1
                heapq.heappush(heap, (key(nxt), tie, nxt))
    if len(order) != len(indegree):
        raise CycleFound(f"{len(indegree) - len(order)} nodes are on or behind a cycle")
    return order
