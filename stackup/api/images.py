"""Image verbs that need no project: pull, push, tag (any runtime); bootstrap, load, save,
history (the native engine's store).

    from stackup.api.images import Images, pull_image
    pull_image("registry.example:5000/team/app:1")
    with Images.connect() as images:
        images.bootstrap("debian:bookworm", progress=print)

Registry verbs open the chosen backend (`--runtime`, `STACKUP_RUNTIME`), do one thing and close
it; credentials are those of the calling user (`stackup login`, Docker's config.json). `Images`
acts on stackup's own engine store: a Docker or Podman daemon has its own `save`/`load`.
Per-container verbs (`commit`, `export`) are `Stack` methods, since they name a service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING

from stackup.api.backends import open_backend
from stackup.errors import RuntimeFailure

if TYPE_CHECKING:
    from stackup.runtime.base import ImageInfo, TransferProgress
    from stackup.runtime.native.client import EngineClient
    from stackup.runtime.wire.images import HistoryEntry, Image
class Images:
    """The engine's image store, through its client."""

    def __init__(self, client: EngineClient, *, owns_client: bool = False) -> None:
        self.client = client
        self._owns_client = owns_client

    @classmethod
    def connect(cls) -> Images:
        """The engine of this `STACKUP_ROOT` (started if it is not running)."""
        from stackup.runtime.native.launcher import ensure_engine

        return cls(ensure_engine(), owns_client=True)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Images:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def bootstrap(
        self, base: str, ref: str | None = None, *, mirror: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Image:
        """Make `base` (`busybox`, `debian:bookworm`, `debian:bookworm-slim`, ...) in the store as
        `ref` (default: the base's own name). Debian bases come from debootstrap, run once per
        machine and cached; `progress` receives its output lines."""
        for item in self.client.bootstrap_image(base, ref, mirror=mirror):
            if item.error is not None:
                raise RuntimeFailure(f"bootstrap {base}: {item.error}")
            if item.image is not None:
                return item.image
            if progress is not None:
                progress(item.line)
        raise RuntimeFailure(f"bootstrap {base}: the engine ended the stream without an image")

    def load(self, archive: IO[bytes]) -> list[Image]:
        """Load a `docker save` / `podman save` / `stackup image save` tar or an OCI layout tar."""
        return self.client.load_images(archive)

    def save(self, names: Sequence[str]) -> Iterator[bytes]:
        """The images as one tar (docker-archive and OCI layout at once), in chunks."""
        return self.client.save_images(names)

    def history(self, ref: str) -> list[HistoryEntry]:
        """The steps that made the image, newest first."""
        return self.client.image_history(ref)



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
