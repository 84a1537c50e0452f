"""Images as the engine records and the API answers them (`GET /images`, import results).

The engine's image store writes and reads these; the client parses its answers into them, so
they live on the wire side and neither party imports the other's internals.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from stackup.runtime.wire.imageconfig import ImageConfig


class LayerRecord(BaseModel):
    """One layer of an image: the blob as stored and the DiffID of its uncompressed tar."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: str
    diff_id: str
    size: int
    media_type: str


class Image(BaseModel):
    """An image as the engine sees it. `id` is the sha256 of the config JSON; `refs` are the
    short (familiar) names, e.g. `busybox:latest` for `docker.io/library/busybox:latest`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    refs: tuple[str, ...] = ()
    created: datetime | None = None
    size: int = 0
    architecture: str = ""
    os: str = "linux"
    config: ImageConfig = ImageConfig()
    layers: tuple[LayerRecord, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)


ImageRecord = Image
"""The name the engine's API client uses for the same model."""
