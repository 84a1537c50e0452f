"""A build event as one progress line, from its JSON form (standard library only).

Shared by the client (`runtime/native/build.py`) and the CLI's no-op build shortcut
(`cli/buildfast.py`), which reads the engine's NDJSON without loading the pydantic models, so
both print exactly the same lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def progress_line(event: Mapping[str, Any]) -> str:
    """`[2/5] RUN ...`, `[2/5] CACHED`, `[2/5] | output`, `[2/5] DONE 1.2s`, `built ID TAGS`."""
    kind, step = event.get("kind"), event.get("step", "")
    if kind == "step":
        return f"{step} {event.get('text', '')}"
    if kind == "cached":
        return f"{step} CACHED"
    if kind == "done":
        return f"{step} DONE {float(event.get('elapsed_s', 0.0)):.1f}s"
    if kind == "output":
        return f"{step} | {event.get('text', '')}"
    if kind == "result":
        return f"built {str(event.get('image_id', ''))[7:19]} {' '.join(event.get('tags', ()))}".rstrip()
    return f"ERROR {event.get('text', '')}"
