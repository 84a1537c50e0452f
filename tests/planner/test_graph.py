"""The service graph: explicit and implicit edges, and its renderings."""

from __future__ import annotations

import json

from stackup.planner.graph import GraphFormat, render, service_graph, start_order
from tests.planner._build import project


def demo() -> object:
    return project(
        {
            "db": {"image": "pg"},
            "api": {"image": "api", "depends_on": {"db": {"condition": "service_healthy", "restart": True}}},
            "web": {"image": "web", "links": ["api:backend"], "depends_on": {"cache": {"required": False}}},
            "cache": {"image": "redis"},
            "sidecar": {"image": "x", "network_mode": "service:web", "volumes_from": ["db:ro"]},
        }
    )


def test_edges_carry_condition_and_implicit_dependencies_are_folded_in() -> None:
    graph = service_graph(demo())  # type: ignore[arg-type]
    assert graph.edges["api", "db"]["condition"] == "service_healthy"
    assert graph.edges["web", "api"]["via"] == "links"
    assert graph.edges["sidecar", "web"]["via"] == "network_mode"
    assert graph.edges["sidecar", "db"]["via"] == "volumes_from"
    assert graph.edges["web", "cache"]["required"] is False
    assert start_order(graph) == ["cache", "db", "api", "web", "sidecar"]


def test_text_and_mermaid_and_json_renderings() -> None:
    graph = service_graph(demo())  # type: ignore[arg-type]
    assert render(graph, GraphFormat.TEXT) == (
        "cache\n"
        "db\n"
        "api -> db (service_healthy, restart)\n"
        "web -> api (service_started, via links), cache (service_started, optional)\n"
        "sidecar -> db (service_started, via volumes_from), web (service_started, via network_mode)\n"
    )
    assert "  s0 -->|service_healthy, restart| s2" in render(graph, GraphFormat.MERMAID)
    assert '"api" -> "db" [label="service_healthy, restart"];' in render(graph, GraphFormat.DOT)
    data = json.loads(render(graph, GraphFormat.JSON))
    assert {
        "from": "web",
        "to": "cache",
        "condition": "service_started",
        "required": False,
        "restart": False,
        "via": "depends_on",
    } in data["edges"]
