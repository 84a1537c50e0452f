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


class HistoryEntry(BaseModel):
    """One step of `image history`, newest first as Docker prints it. `id` is the image's own id
    on the top step and `<missing>` below it (the steps were not images here); `size` is the
    layer the step made, 0 for steps that only changed the config (`empty_layer`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    created: datetime | None = None
    created_by: str = ""
    size: int = 0
    comment: str = ""
    tags: tuple[str, ...] = ()
    empty_layer: bool = False


class BootstrapRequest(BaseModel):
    """Make a base image with no registry: `busybox`, `debian:SUITE` or `debian:SUITE-slim`.
    `ref` defaults to the base's own name (`debian:bookworm`) and `stackup/busybox:latest`;
    `mirror` to the Debian mirror the engine machine's apt uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: str
    ref: str | None = None
    mirror: str | None = None


class BootstrapProgress(BaseModel):
    """One line of a bootstrap's NDJSON stream: output while it works, then the image (or the
    error: the answer's status was sent before the work began)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: str = ""
    image: Image | None = None
    error: str | None = None
