"""What crosses the socket for a Dockerfile build: the request and the progress stream.

A local engine is sent the context's host path and reads the directory itself (no tar upload); a
remote one first receives the context as a tar (`POST /build/contexts`, answered with a
`ContextUpload` naming where the engine unpacked it) and is then sent that path. Secrets are host
file paths, read by the engine only while the RUN step that mounts them runs, or values from the
caller's environment (`secret_values`, `SecretStr`: masked in reprs and dumps); their content
never appears in a layer, a cache key or the stream. Progress is newline-delimited `BuildEvent`s:
one `step` when a step starts, then `cached` or `output` lines and `done` (with the elapsed
time); the stream ends with `result` or `error`.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContextUpload(_Frozen):
    """Where the engine unpacked an uploaded build context; removed with
    `DELETE /build/contexts/{id}` once the build that uses it is over."""

    id: str
    path: str


class BuildRequest(_Frozen):
    """One `docker build`, as the engine needs it. `dockerfile` is relative to `context` unless
    absolute; `dockerfile_inline` wins over it."""

    context: str
    dockerfile: str = "Dockerfile"
    dockerfile_inline: str | None = None
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    tags: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    secrets: dict[str, str] = Field(default_factory=dict, description="secret id -> host file path")
    secret_values: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="secret id -> value (a secret from the caller's environment); masked in every "
        "repr and `model_dump`, sent only by `wire_json()`",
    )
    additional_contexts: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    extra_hosts: dict[str, str] = Field(default_factory=dict, description="hostname -> address")
    shm_size: int | None = Field(default=None, gt=0)
    cached_only: bool = Field(
        default=False,
        description="answer from the cache only: a step that would run ends the build first (`not_cached`)",
    )


    def wire_json(self) -> bytes:
        """The request as sent to the engine: the only form that carries secret values."""
        data = self.model_dump(mode="json", exclude={"secret_values"})
        if self.secret_values:
            data["secret_values"] = {k: v.get_secret_value() for k, v in self.secret_values.items()}
        return json.dumps(data).encode()


class BuildEventKind(StrEnum):
    STEP = "step"
    CACHED = "cached"
    OUTPUT = "output"
    DONE = "done"
    RESULT = "result"
    ERROR = "error"


class BuildEvent(_Frozen):
    """One line of build progress. `step` is `[stage n/total]`-style text naming the step;
    `line` the Dockerfile line of the step (0: none); `text` the instruction, an output line or
    an error message; `tail` the last output lines of a failed step."""

    kind: BuildEventKind
    step: str = ""
    line: int = 0
    text: str = ""
    elapsed_s: float = 0.0
    image_id: str = ""
    tags: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()
    error_kind: str = ""
    """For `error`: `dockerfile` (the input is wrong), `not_found` (a base image), `failure`, or
    `not_cached` (a `cached_only` build met a step it would have to run; nothing ran)."""


class BuildCachePrune(_Frozen):
    """`builder prune`: everything, or down to `keep_bytes` (least recently used first)."""

    all: bool = True
    keep_bytes: int = Field(default=0, ge=0)


class BuildCacheUsage(_Frozen):
    entries: int = 0
    bytes: int = 0
    removed: int = 0
    reclaimed: int = 0
