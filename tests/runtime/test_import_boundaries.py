"""The client/engine seam, checked from the source: what each runtime package may import.

import-linter will check the same contracts in CI; this test keeps them from breaking in the
meantime and reads every import, including those inside functions (a lazy import still couples
the packages). It also checks that no two modules of the engine import each other in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every `stackup...` module `path` imports (`from a import b` counts `a.b` when b is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("stackup")}


def _graph() -> nx.DiGraph:
    modules = {_module_name(p): p for p in (ROOT / "stackup").rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for target in _imports(path):
            if target in modules and target != name:
                graph.add_edge(name, target)
    return graph


GRAPH = _graph()


def _offending(prefix: str, forbidden: tuple[str, ...]) -> list[tuple[str, str]]:
    return sorted(
        (source, target)
        for source, target in GRAPH.edges
        if source.startswith(prefix) and target.startswith(forbidden)
    )


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("stackup.runtime.native", ("stackup.runtime.engine",)),
        ("stackup.runtime.wire", ("stackup.runtime.engine", "stackup.runtime.native")),
        (
            "stackup.runtime.engine",
            ("stackup.spec", "stackup.planner", "stackup.cli", "stackup.api", "stackup.runtime.native"),
        ),
    ],
)
def test_package_imports_nothing_forbidden(package: str, forbidden: tuple[str, ...]) -> None:
    assert _offending(package, forbidden) == []


def test_no_import_cycle_inside_the_runtime() -> None:
    runtime = GRAPH.subgraph(n for n in GRAPH if n.startswith("stackup.runtime"))
    cycles = [sorted(c) for c in nx.strongly_connected_components(runtime) if len(c) > 1]
    assert cycles == []
