"""Image verbs that need no project: `stackup image pull|push|tag NAME`.

Each opens the chosen backend (`--runtime`, `STACKUP_RUNTIME`), does one thing and closes it.
Registry credentials are those of the calling user (`stackup login`, Docker's config.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from stackup.api.backends import open_backend

if TYPE_CHECKING:
    from stackup.runtime.base import ImageInfo, TransferProgress


def pull_image(ref: str, *, platform: str | None = None, runtime: str | None = None,
               progress: TransferProgress | None = None) -> ImageInfo:
    """Pull `ref` (`name[:tag][@digest]`) from its registry into the backend's store."""
    backend = open_backend(runtime)
    try:
        return backend.pull_image(ref, platform=platform, progress=progress)
    finally:
        backend.close()


def pull_images(refs: Sequence[str], *, platform: str | None = None, runtime: str | None = None,
                progress: TransferProgress | None = None) -> list[ImageInfo]:
    """Pull several references at once (one backend, one thread each); the first error is raised
    after every pull finished, so what could be pulled is."""
    backend = open_backend(runtime)
    try:
        with ThreadPoolExecutor(max(1, len(refs)), thread_name_prefix="stackup-pull") as pool:
            futures = [pool.submit(backend.pull_image, ref, platform=platform, progress=progress)
                       for ref in refs]
        return [future.result() for future in futures]
    finally:
        backend.close()


def push_image(ref: str, *, runtime: str | None = None, progress: TransferProgress | None = None) -> str:
    """Push the local image `ref` to the registry its name points at; returns the manifest digest."""
    backend = open_backend(runtime)
    try:
        return backend.push_image(ref, progress=progress)
    finally:
        backend.close()


def tag_image(ref: str, target: str, *, runtime: str | None = None) -> ImageInfo:
    """Give the local image `ref` the additional name `target` (`docker tag`)."""
    backend = open_backend(runtime)
    try:
        return backend.tag_image(ref, target)
    finally:
        backend.close()
