"""A build event as one progress line, and an error event as the error, from its JSON form.

Shared by the client (`runtime/native/build.py`) and the CLI's no-op build shortcut
(`cli/buildsend.py`), which reads the engine's NDJSON without loading the pydantic models, so
both print the same lines and raise the same errors. Standard library and `stackup.errors` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackup.errors import BuildFailed, DockerfileError, NotFound, RuntimeFailure, StackupError


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


def build_error(event: Mapping[str, Any], dockerfile: str) -> StackupError:
    """The error an `error` event reports: `DockerfileError` (the input is wrong, located in
    `dockerfile`), `NotFound` (a base image, with how to get it), `BuildFailed` (a step: its
    Dockerfile line and output tail), else `RuntimeFailure`."""
    text, line, kind = str(event.get("text", "")), int(event.get("line") or 0), event.get("error_kind")
    if kind == "dockerfile":
        return DockerfileError(text.split(": ", 1)[-1] if line else text, path=dockerfile, line=line)
    if kind == "not_found":
        return NotFound(text)
    if event.get("step"):
        return BuildFailed(text, step=str(event["step"]), line=line, tail=tuple(event.get("tail") or ()))
    return RuntimeFailure(text)
