"""Ask the engine to answer recorded builds from its build cache alone (standard library only).

Each request goes to `POST /build` with `cached_only`: the engine computes every step's key as a
real build does and ends with `not_cached` at the first step it would have to run, before
running anything. Used by the no-op shortcuts of `build` (`buildfast`) and `up -d --build`
(`fastpath`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _socket() -> Path:
    return Path(os.environ.get("STACKUP_ROOT") or "/var/lib/stackup") / "stackupd.sock"


def _ask_engine(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str] | None:
    """The events of a `cached_only` build and the image id; None when the engine would build."""
    from stackup.cli.pullfast import _ndjson_post

    data = json.dumps({**body, "cached_only": True}).encode()
    lines = _ndjson_post(_socket(), "/build", data)
    events = [json.loads(line) for line in lines if line.strip()]
    last = events[-1] if events else {}
    if last.get("kind") != "result" or not last.get("image_id"):
        return None  # not cached, or an error the full path reports with its location
    return events, str(last["image_id"])


def answer_builds(
    builds: list[list[Any]], extra_args: Mapping[str, str]
) -> tuple[list[tuple[str, str]], list[str]] | None:
    """Each recorded (service, request) answered by the engine from its cache alone, with
    `extra_args` merged into its build args: ([(service, image id)], progress lines), or None
    as soon as one build would have to run a step (or anything about the exchange is off)."""
    answered: dict[str, tuple[list[dict[str, Any]], str]] = {}
    built: list[tuple[str, str]] = []
    lines: list[str] = []
    for service, body in builds:
        tag = body["tags"][0]
        if tag not in answered:
            answer = _ask_engine({**body, "args": {**body["args"], **extra_args}})
            if answer is None:
                return None
            answered[tag] = answer
            lines += [f"{service:12} {_line(event)}\n" for event in answer[0]]
        built.append((service, answered[tag][1]))
    return built, lines


def _line(event: dict[str, Any]) -> str:
    from stackup.runtime.wire.buildtext import progress_line

    return progress_line(event)
