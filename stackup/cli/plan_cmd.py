"""`stackup plan` and `stackup graph`: what `up` would do and why, and the service graph.

Functions, not typer commands: the integrator wires them into `main.app`. `plan_command` follows
terraform's `-detailed-exitcode`: 0 = nothing to change, 2 = changes (Compose #8551 asked for it),
so CI can gate on drift.
"""

from __future__ import annotations

import dataclasses
import json
from enum import StrEnum
from typing import TYPE_CHECKING, assert_never

from stackup.cli.output import warn, write

if TYPE_CHECKING:
    from stackup.planner.graph import GraphFormat
    from stackup.planner.observed import Observed
    from stackup.planner.options import ReconcileOptions
    from stackup.spec.loader import LoadedProject
    from stackup.spec.models import Project

EXIT_NO_CHANGES = 0
EXIT_CHANGES = 2


class PlanFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def reconcile_options(loaded: LoadedProject, options: ReconcileOptions) -> ReconcileOptions:
    """Fill in what the load knows (file contents for the hash, disabled services, paths)."""
    return dataclasses.replace(
        options,
        referenced_files={**loaded.referenced_files, **options.referenced_files},
        disabled_services=options.disabled_services | frozenset(loaded.disabled_services),
        working_dir=options.working_dir or (str(loaded.files[0].parent) if loaded.files else ""),
        config_files=options.config_files or tuple(str(f) for f in loaded.files),
    )


def plan_command(
    loaded: LoadedProject, observed: Observed, options: ReconcileOptions, fmt: PlanFormat
) -> int:
    """Print the plan for `loaded` against `observed`; return 0 (no changes) or 2 (changes)."""
    from stackup.planner.reconcile import reconcile

    options = reconcile_options(loaded, options)
    for message in loaded.warnings:
        warn(message)
    plan = reconcile(loaded.project, observed, options)
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
