"""Images as the engine records and the API answers them (`GET /images`, import results).

The engine's image store writes and reads these; the client parses its answers into them, so
they live on the wire side and neither party imports the other's internals.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

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
    repo_digests: tuple[str, ...] = ()
    """`name@sha256:...` for each reference pulled from a registry (Docker's `RepoDigests`)."""
    last_pulled: datetime | None = None

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)


ImageRecord = Image


class RegistryAuth(BaseModel):
    """Credentials the client resolved for one registry host (from the invoking user's Docker
    config or credential helper): the engine runs as root with another HOME, so it never reads
    them itself. Never logged; the engine keeps them only for the one request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str
    username: str = ""
    password: str = ""
    identity_token: str = ""


class ImagePull(BaseModel):
    """`POST /images/pull`: fetch `ref` (`platform` like `linux/arm64`, default this machine)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str
    platform: str | None = None
    auth: tuple[RegistryAuth, ...] = ()


class ImagePush(BaseModel):
    """`POST /images/{ref}/push`: upload the image to the registry its reference names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: tuple[RegistryAuth, ...] = ()


class ImageTag(BaseModel):
    """`POST /images/{ref}/tag`: make `target` point at the image `ref` names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str


class TransferState(StrEnum):
    """A layer's progress (`exists`: already in the store, or already in the registry on push)."""

    EXISTS = "exists"
    DOWNLOADING = "downloading"
    UPLOADING = "uploading"
    DONE = "done"


class TransferEvent(BaseModel):
    """One NDJSON line of a pull or push: a layer's progress, then one final line with either
    the image (pull), the pushed digest (push), or the error (the status was sent before it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layer: str = ""
    state: TransferState | None = None
    done: int = 0
    total: int = 0
    image: Image | None = None
    digest: str = ""
    error: str = ""
    not_found: bool = False
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
