"""stackup: declarative environments from Compose-compatible stack files.

Import nothing heavy here: `stackup --version` must start in well under 150 ms. `stackup.Stack`
(the Python API, `stackup.api`) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackup.api.stack import Stack

__version__ = "0.1.0"
__all__ = ["Stack", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Stack":
        from stackup.api.stack import Stack

        return Stack
    raise AttributeError(name)
