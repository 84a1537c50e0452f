"""The Python API: `Stack` and the runtime choice, shared by the CLI, watch, tests and deploy.

    from stackup.api import Stack
    with Stack.load(["compose.yaml"]) as stack:
        stack.up(wait=True)

Names are imported lazily so `import stackup.api` stays cheap for the CLI's fast paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackup.api.backends import RuntimeKind, open_backend
    from stackup.api.readiness import Diagnosis
    from stackup.api.stack import RunResult, Stack, UpResult

__all__ = ["Diagnosis", "RunResult", "RuntimeKind", "Stack", "UpResult", "open_backend"]

_WHERE = {
    "Stack": "stackup.api.stack",
    "UpResult": "stackup.api.stack",
    "RunResult": "stackup.api.stack",
    "Diagnosis": "stackup.api.readiness",
    "RuntimeKind": "stackup.api.backends",
    "open_backend": "stackup.api.backends",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
