"""Image verbs that need no project: bootstrap a base, load, save, history, tag.

    from stackup.api.images import Images
    with Images.connect() as images:
        images.bootstrap("debian:bookworm", progress=print)
        with open("app.tar", "wb") as out:
            for chunk in images.save(["app:1"]):
                out.write(chunk)

They act on stackup's own engine store (the native runtime): a Docker or Podman daemon has its
own `save`/`load`. Per-container verbs (`commit`, `export`) are `Stack` methods, since they name
a service of a project.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING

from stackup.errors import RuntimeFailure

if TYPE_CHECKING:
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

    def tag(self, source: str, target: str) -> Image:
        """Give the image `source` (reference or id) the reference `target` as well."""
        return self.client.tag_image(source, target)
