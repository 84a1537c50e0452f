"""`stackup plan` and `stackup graph`: what `up` would do and why, and the service graph.

Functions, not typer commands: the integrator wires them into `main.app`. `plan_command` follows
terraform's `-detailed-exitcode`: 0 = nothing to change, 2 = changes (Compose #8551 asked for it),
so CI can gate on drift.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, assert_never

from stackup.cli.output import write

if TYPE_CHECKING:
    from stackup.planner.graph import GraphFormat
    from stackup.planner.plan import Plan
    from stackup.spec.models import Project

EXIT_NO_CHANGES = 0
EXIT_CHANGES = 2


class PlanFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def plan_command(plan: Plan, fmt: PlanFormat) -> int:
    """Print `plan`; return 0 (no changes) or 2 (changes)."""
    match fmt:
        case PlanFormat.TEXT:
            write(str(plan))
        case PlanFormat.JSON:
            write(json.dumps(plan.to_json(), indent=2))
        case _:
            assert_never(fmt)
    return EXIT_CHANGES if plan.has_changes else EXIT_NO_CHANGES


def graph_command(project: Project, fmt: GraphFormat) -> str:
    """The service graph of `project` as text, DOT, Mermaid or JSON (the caller prints it)."""
    from stackup.planner.graph import render, service_graph

    return render(service_graph(project), fmt)
