"""stackup.spec: stack files in, a validated `Project` out (`load`).

`load`, `LoadOptions` and `LoadedProject` are re-exported lazily: the engine imports small
modules of this package (errors, units) and must not pay for the whole loader (ruamel, the
model) in its start-up time and resident memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackup.spec.loader import LoadedProject, load
    from stackup.spec.options import LoadOptions

__all__ = ["LoadOptions", "LoadedProject", "load"]


def __getattr__(name: str) -> Any:
    if name in ("load", "LoadedProject"):
        from stackup.spec import loader

        return getattr(loader, name)
    if name == "LoadOptions":
        from stackup.spec.options import LoadOptions

        return LoadOptions
    raise AttributeError(name)
