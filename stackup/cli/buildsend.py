"""Send recorded build requests straight to the engine (standard library only).

The requests were recorded by the last full `stackup build` / `up -d --build` whose stack inputs
are proven unchanged (`buildfast`, `fastpath`), so they are exactly what the full path would
send. Two modes:

- `cached_only` (`up -d --build`): the engine computes every step's key as a real build does
  and ends with `not_cached` at the first step it would have to run, before running anything;
  any answer but a result means "take the full path".
- a real build (`build`): progress lines go to `emit` as the engine streams them, and an error
  event becomes the same `StackupError` the full path raises (`wire.buildtext.build_error`).
  Only when the engine cannot be reached before the first event does the full path take over.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from stackup.errors import RuntimeFailure


class Unanswered(Exception):
    """The engine did not answer (gone, too old, or `not_cached`): take the full path."""


def _socket() -> Path:
    return Path(os.environ.get("STACKUP_ROOT") or "/var/lib/stackup") / "stackupd.sock"


def _events(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from stackup.cli.pullfast import _ndjson_post

    started = False
    try:
        for line in _ndjson_post(_socket(), "/build", json.dumps(body).encode()):
            if line.strip():
                started = True
                yield json.loads(line)
    except (OSError, ValueError) as exc:
        if not started:
            raise Unanswered(str(exc)) from exc
        raise RuntimeFailure(f"build: the engine's progress stream broke off: {exc}") from exc


def send_builds(
    builds: list[list[Any]],
    extra_args: Mapping[str, str],
    *,
    cached_only: bool,
    emit: Callable[[str, str], None] | None = None,
) -> list[tuple[str, str]]:
    """Each recorded (service, request), with `extra_args` merged into its build args, built by
    the engine (once per image ref): [(service, image id)]. `emit(service, line)` receives the
    progress. Raises `Unanswered` (take the full path) or, for a real build, the build's error."""
    from stackup.runtime.wire.buildtext import build_error, progress_line

    answered: dict[str, str] = {}
    built: list[tuple[str, str]] = []
    for service, body in builds:
        tag = body["tags"][0]
        if tag not in answered:
            request = {**body, "args": {**body["args"], **extra_args}, "cached_only": cached_only}
            image_id = ""
            for event in _events(request):
                if event.get("kind") == "error":
                    if cached_only:
                        raise Unanswered(str(event.get("text", "")))
                    dockerfile = str(body.get("dockerfile") or "Dockerfile")
                    raise build_error(event, os.path.join(str(body["context"]), dockerfile))
                if emit is not None:
                    emit(service, progress_line(event))
                if event.get("kind") == "result":
                    image_id = str(event.get("image_id") or "")
            if not image_id:
                raise Unanswered("the engine ended the build without a result")
            answered[tag] = image_id
        built.append((service, answered[tag]))
    return built
