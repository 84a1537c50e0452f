"""stackup.spec: stack files in, a validated `Project` out (`load`).

Everything a caller needs is re-exported here; the passes live in their own modules.
"""

from __future__ import annotations

from stackup.spec.load import LoadedProject, load
from stackup.spec.options import LoadOptions

__all__ = ["LoadOptions", "LoadedProject", "load"]
