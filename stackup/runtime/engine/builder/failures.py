"""How a build fails: a located step failure, a `cached_only` miss, a base image not here."""

from __future__ import annotations

from stackup.errors import NotFound, RuntimeFailure

__all__ = ["BuildError", "NotCached", "missing_base"]


class BuildError(RuntimeFailure):
    """A located build failure: the step, its Dockerfile line and its output's tail."""

    def __init__(self, message: str, *, step: str = "", line: int = 0, tail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.step, self.line, self.tail = step, line, tail


class NotCached(RuntimeFailure):
    """A `cached_only` build met a step that is not in the cache; raised before it runs."""


def missing_base(ref: str) -> NotFound:
    """A base image that is not in the store, with how to get one (no registry is used)."""
    hint = (
        "`stackup image bootstrap debian:bookworm`"
        if ref.startswith("debian")
        else "`stackup image bootstrap busybox`"
        if ref.startswith("busybox")
        else f"`stackup image import ROOTFS|ARCHIVE {ref}`"
    )
    return NotFound(f'base image "{ref}" is not in the local store (no registry is used): get it with {hint}')
