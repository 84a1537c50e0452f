"""Shared by the plugin's tests: the test stack, how to load the plugin, what a project left."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from stackup.api import Stack
from stackup.runtime import labels as lbl

STACK = Path(__file__).parent / "stack" / "compose.yaml"


def plugin_installed() -> bool:
    """True once the `pytest11` entry point is installed (`pip install -e .` after the merge)."""
    return any(ep.name == "stackup" for ep in importlib.metadata.entry_points(group="pytest11"))


# Runs of pytest load the plugin through its entry point; from a checkout not (re)installed,
# name it explicitly (both at once would register the module twice).
PLUGIN_ARGS: list[str] = [] if plugin_installed() else ["-p", "stackup.testing.plugin"]



def leftovers(project: str) -> list[str]:
    """Everything of `project` still on the engine: containers, networks, volumes."""
    with Stack.by_name(project) as stack:
        found = [f"container {c.name}" for c in stack.backend.list_containers(project)]
        found += [f"network {n.name}" for n in stack.backend.list_networks()
                  if n.labels.get(lbl.PROJECT) == project]  # fmt: skip
        found += [f"volume {v.name}" for v in stack.backend.list_volumes()
                  if v.labels.get(lbl.PROJECT) == project]  # fmt: skip
    return found
