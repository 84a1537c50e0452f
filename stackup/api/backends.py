"""Which runtime a front end drives: chosen here and nowhere else.

`--runtime native|docker` (or `STACKUP_RUNTIME`) picks the backend. `native` is stackup's own
engine (`stackupd`, started on demand); `docker` is an existing Docker Engine or Podman through
its Docker-compatible API (`DOCKER_HOST`, the current Docker context, or the default socket).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from stackup.errors import UsageError

if TYPE_CHECKING:
    from stackup.runtime.base import Backend

ENV_VAR = "STACKUP_RUNTIME"


class RuntimeKind(StrEnum):
    NATIVE = "native"
    DOCKER = "docker"


def runtime_kind(value: str | None = None, environ: Mapping[str, str] | None = None) -> RuntimeKind:
    """The flag's value, else `STACKUP_RUNTIME`, else native."""
    env = os.environ if environ is None else environ
    chosen = value or env.get(ENV_VAR) or RuntimeKind.NATIVE.value
    try:
        return RuntimeKind(chosen)
    except ValueError:
        raise UsageError(f'unknown runtime "{chosen}": use native or docker') from None


def open_backend(kind: RuntimeKind | str | None = None, environ: Mapping[str, str] | None = None) -> Backend:
    """Connect to the chosen runtime (starting the native engine if it is not running)."""
    env = dict(os.environ if environ is None else environ)
    match runtime_kind(kind, env):
        case RuntimeKind.NATIVE:
            from stackup.runtime.native.launcher import ensure_engine
            from stackup.runtime.native.runtime import NativeRuntime

            return NativeRuntime(ensure_engine())
        case RuntimeKind.DOCKER:
            from stackup.runtime.docker.runtime import DockerRuntime

            return DockerRuntime.from_env(env)
