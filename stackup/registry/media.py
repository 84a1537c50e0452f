"""Manifest and descriptor documents of the distribution protocol (Docker schema 2 and OCI).

Parsed by hand into frozen dataclasses: the documents are small, the fields we need are few, and a
missing or malformed field must become one clear error naming the image, not a validation dump.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stackup.registry.errors import UnsupportedManifest
from stackup.registry.platform import Platform
from stackup.registry.reference import is_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST_PREFIX = "application/vnd.oci.image.layer.nondistributable.v1.tar"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
"""The Accept header of a manifest request: everything this client can use, no schema 1."""


class Compression(StrEnum):
    """How a layer blob is encoded; the store decompresses accordingly to compute DiffIDs."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


def layer_compression(media_type: str) -> Compression:
    """From the media type; unknown layer types are refused rather than guessed."""
    if media_type in (DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER, OCI_LAYER_GZIP, OCI_NONDIST_PREFIX + "+gzip"):
        return Compression.GZIP
    if media_type in (OCI_LAYER_ZSTD, OCI_NONDIST_PREFIX + "+zstd"):
        return Compression.ZSTD
    if media_type in (OCI_LAYER, OCI_NONDIST_PREFIX):
        return Compression.NONE
    raise UnsupportedManifest(f"unknown layer media type {media_type!r}")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A pointer to content: media type, digest, size (and a platform, in an index)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise UnsupportedManifest(f"{where}: descriptor is not an object")
        digest, size = data.get("digest"), data.get("size")
        if not isinstance(digest, str) or not is_digest(digest):
            raise UnsupportedManifest(f"{where}: bad or unsupported digest {digest!r}")
        if not isinstance(size, int) or size < 0:
            raise UnsupportedManifest(f"{where}: bad size {size!r}")
        raw_platform = data.get("platform")
        annotations = data.get("annotations") or {}
        return cls(
            media_type=str(data.get("mediaType", "")), digest=digest, size=size,
            platform=Platform.from_descriptor(raw_platform) if isinstance(raw_platform, dict) else None,
            annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
            urls=tuple(str(u) for u in data.get("urls") or ()))

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            out["platform"] = {"os": self.platform.os, "architecture": self.platform.architecture}
            if self.platform.variant:
                out["platform"]["variant"] = self.platform.variant
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.urls:
            out["urls"] = list(self.urls)
        return out


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """One image for one platform: its config blob and its layers, lowest first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """A manifest list / OCI index: one manifest per platform (plus attestations, ignored)."""

    media_type: str
    manifests: tuple[Descriptor, ...]

    def images(self) -> tuple[Descriptor, ...]:
        """Entries that are runnable images: attestation and signature manifests are left out."""
        return tuple(d for d in self.manifests
                     if d.annotation("vnd.docker.reference.type") != "attestation-manifest"
                     and not (d.platform is not None and d.platform.os == "unknown"))


def parse_manifest(raw: bytes, content_type: str = "") -> ImageManifest | ImageIndex:
    """Parse a manifest body; the document's own `mediaType` wins over the Content-Type header."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UnsupportedManifest(f"manifest is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UnsupportedManifest("manifest is not a JSON object")
    media_type = str(data.get("mediaType") or content_type.split(";", maxsplit=1)[0].strip())
    if media_type in DOCKER_SCHEMA1 or data.get("schemaVersion") == 1:
        raise UnsupportedManifest("Docker schema 1 manifests are not supported; push the image again "
                                  "with a current client (schema 2 or OCI)")
    if media_type in INDEX_TYPES or (media_type in ("", "application/json") and "manifests" in data):
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise UnsupportedManifest("index has no `manifests` list")
        return ImageIndex(media_type or OCI_INDEX,
                          tuple(Descriptor.parse(e, f"manifests[{i}]") for i, e in enumerate(entries)))
    if media_type in MANIFEST_TYPES or (media_type in ("", "application/json") and "config" in data):
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise UnsupportedManifest("manifest has no `layers` list")
        return ImageManifest(media_type or OCI_MANIFEST, Descriptor.parse(data.get("config"), "config"),
                             tuple(Descriptor.parse(layer, f"layers[{i}]") for i, layer in enumerate(layers)))
    raise UnsupportedManifest(f"unsupported manifest media type {media_type!r}")
