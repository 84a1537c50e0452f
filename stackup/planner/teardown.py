"""`down` as a plan: the same graph machinery, walked in reverse dependency order.

Works from the observed state alone (labels record each container's `depends_on`), so `down` also
removes what an older version of the stack file made. Dependents go before their dependencies,
and networks and volumes only after every container that could use them is gone. External
resources are never touched: only those labelled with the project are removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from stackup.planner.observed import Observed
from stackup.planner.plan import Operation, OpKind, Plan, ResourceKind


@dataclass(frozen=True, slots=True)
class DownOptions:
    """`volumes`: also remove the project's named volumes (`down -v`)."""

    volumes: bool = False
    services: tuple[str, ...] = ()


def plan_down(observed: Observed, options: DownOptions | None = None) -> Plan:
    """Stop and remove the project's containers (dependents first), then its networks and volumes."""
    options = options or DownOptions()
    graph = nx.DiGraph()
    wanted = set(options.services)
    containers = [c for c in observed.containers if not wanted or c.service in wanted]
    by_service: dict[str, list[str]] = {}
    for c in containers:
        op = Operation(
            OpKind.REMOVE,
            ResourceKind.SERVICE,
            f"{c.service}-{c.number}" if c.number > 0 else c.name,
            cause="down",
            service=c.service,
            number=c.number,
            container=c.id,
        )
        graph.add_node(op.id, op=op)
        by_service.setdefault(c.service, []).append(op.id)
    for c in containers:  # reverse of up: the dependent's removal comes before its dependency's
        for dep in c.depends_on:
            for before in by_service.get(c.service, []):
                graph.add_edges_from((before, after) for after in by_service.get(dep, []))
    if not wanted:
        last = [
            Operation(OpKind.REMOVE, ResourceKind.NETWORK, n.name, cause="down")
            for n in observed.networks.values()
            if n.project == observed.project
        ]
        if options.volumes:
            last += [
                Operation(OpKind.REMOVE, ResourceKind.VOLUME, v.name, cause="down -v")
                for v in observed.volumes.values()
                if v.project == observed.project
            ]
        all_containers = [n for ops in by_service.values() for n in ops]
        for op in last:
            graph.add_node(op.id, op=op)
            graph.add_edges_from((c, op.id) for c in all_containers)
    return Plan(observed.project, graph)
