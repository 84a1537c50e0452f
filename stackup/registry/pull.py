"""Pull: resolve a reference to one platform's manifest, then stream its blobs into a sink.

The sink is the caller's store (`BlobSink`); this module never decides where bytes live. Every blob
is hashed while it streams and the sink's writer is committed only when size and digest match, so a
corrupted or truncated download leaves nothing behind. Blobs the sink already has are not
requested at all. Layers download in parallel (`max_concurrent_downloads`, Docker's default 3),
each reporting progress; the first failure cancels the layers not yet started.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from stackup.registry.blobs import (
    BlobProgress,
    BlobSink,
    BlobState,
    BlobWriter,
    Progress,
    compute_digest,
    hasher_for,
)
from stackup.registry.client import RegistryClient, scope
from stackup.registry.download import download_all, download_blob, download_to_memory
from stackup.registry.errors import DigestMismatch, UnsupportedManifest
from stackup.registry.media import (
    ACCEPT,
    Compression,
    Descriptor,
    ImageIndex,
    ImageManifest,
    layer_compression,
    parse_manifest,
)
from stackup.registry.platform import Platform, describe, host_platform, select
from stackup.registry.reference import Reference

_MAX_MANIFEST = 4 << 20  # the OCI distribution spec's recommended limit


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer as the store needs it: the blob, its encoding, and the DiffID the config promises."""

    digest: str
    size: int
    media_type: str
    compression: Compression
    diff_id: str


@dataclass(frozen=True, slots=True)
class Resolved:
    """A reference resolved to one image manifest (through an index, if there was one)."""

    reference: Reference
    digest: str
    """The digest to record as the pulled reference's repo digest (the index's, if any)."""
    manifest_digest: str
    manifest: ImageManifest
    manifest_raw: bytes
    index_digest: str | None = None
    platform: Platform | None = None


@dataclass(frozen=True, slots=True)
class PulledImage:
    """Everything the store records: config bytes (the image id is their sha256) and layers."""

    resolved: Resolved
    config_digest: str
    config_raw: bytes
    layers: tuple[Layer, ...]
    downloaded: tuple[str, ...]
    """Digests actually transferred (the rest the sink already had)."""

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)


def fetch_manifest(client: RegistryClient, ref: Reference, reference: str | None = None,
                   ) -> tuple[bytes, str, str]:
    """(body, media type, digest) of a manifest; a manifest asked for by digest is verified."""
    wanted = reference or ref.manifest_ref
    with client.stream("GET", ref, f"manifests/{wanted}", scopes=(scope(ref),),
                       headers={"Accept": ACCEPT}) as response:
        declared = int(response.headers.get("content-length") or 0)
        if declared > _MAX_MANIFEST:
            raise UnsupportedManifest(f"manifest {wanted} is {declared} bytes, over the 4 MiB limit",
                                      image=ref.familiar)
        body = b"".join(response.iter_raw())
        media_type = response.headers.get("content-type", "")
        header_digest = response.headers.get("docker-content-digest", "")
    by_digest = ":" in wanted
    expected = wanted if by_digest else header_digest
    actual = compute_digest(body, expected or "sha256:")
    if expected and actual != expected:
        raise DigestMismatch(f"manifest {wanted} hashes to {actual}, registry says {expected}; the "
                             "registry or a proxy altered it: retry, then report to its operator",
                             image=ref.familiar)
    return body, media_type, actual


def resolve(client: RegistryClient, ref: Reference, platform: Platform | None = None) -> Resolved:
    """Fetch the manifest of `ref`; an index is narrowed to `platform` (default: this machine)."""
    body, media_type, digest = fetch_manifest(client, ref)
    parsed = _parse(body, media_type, ref)
    if isinstance(parsed, ImageManifest):
        return Resolved(ref, digest, digest, parsed, body, platform=platform)
    wanted = platform or host_platform()
    images = parsed.images()
    chosen = select(((d.platform, d) for d in images), wanted)
    if chosen is None:
        offered = describe([d.platform for d in images if d.platform is not None])
        raise UnsupportedManifest(f"no image for platform {wanted} (the registry has: {offered}); set "
                                  "`platform:` to one of those", image=ref.familiar)
    child_raw, child_type, child_digest = fetch_manifest(client, ref, chosen.digest)
    child = _parse(child_raw, child_type or chosen.media_type, ref)
    if not isinstance(child, ImageManifest):
        raise UnsupportedManifest("an index entry points at another index; nested indexes are not "
                                  "supported", image=ref.familiar)
    return Resolved(ref, digest, child_digest, child, child_raw, index_digest=digest,
                    platform=chosen.platform or wanted)


def remote_digest(client: RegistryClient, ref: Reference) -> str | None:
    """The digest `ref` points at now (HEAD, no download; for `pull_policy`), None if absent."""
    response = client.exists(ref, f"manifests/{ref.manifest_ref}", scopes=(scope(ref),),
                             headers={"Accept": ACCEPT})
    if response is None:
        return None
    found = response.headers.get("docker-content-digest")
    if found:
        return str(found)
    return fetch_manifest(client, ref)[2]  # registries without the header: hash the body


def pull(client: RegistryClient, ref: Reference, sink: BlobSink, *, platform: Platform | None = None,
         progress: Progress | None = None,
         on_layers: Callable[[tuple[Layer, ...]], None] | None = None) -> PulledImage:
    """Pull `ref` into `sink`; returns what the store needs to record the image.

    `on_layers` is told every layer (with its DiffID) before any layer downloads, so a store can
    unpack each one as soon as its `DONE` (or `EXISTS`) progress arrives.

    Raises the registry errors (all `RegistryError`); on failure the sink holds only complete,
    verified blobs, never a partial one.
    """
    resolved = resolve(client, ref, platform)
    manifest = resolved.manifest
    config_raw = _fetch_config(client, ref, manifest.config, sink)
    diff_ids = _diff_ids(config_raw, len(manifest.layers), ref)
    _check_platform(config_raw, platform, ref)
    layers = tuple(Layer(d.digest, d.size, d.media_type, _compression(d, ref), diff_id)
                   for d, diff_id in zip(manifest.layers, diff_ids, strict=True))
    if on_layers is not None:
        on_layers(layers)
    todo: dict[str, Descriptor] = {}
    for descriptor in manifest.layers:
        if descriptor.digest in todo:
            continue
        if sink.has(descriptor.digest):
            if progress:
                progress(BlobProgress(descriptor.digest, descriptor.media_type, BlobState.EXISTS,
                                      descriptor.size, descriptor.size))
            continue
        todo[descriptor.digest] = descriptor
    download_all(client, ref, list(todo.values()), sink, progress)
    downloaded = tuple(todo)
    return PulledImage(resolved, manifest.config.digest, config_raw, layers, downloaded)


def _parse(body: bytes, media_type: str, ref: Reference) -> ImageManifest | ImageIndex:
    try:
        return parse_manifest(body, media_type)
    except UnsupportedManifest as exc:
        raise UnsupportedManifest(exc.message, image=ref.familiar) from exc


def _compression(descriptor: Descriptor, ref: Reference) -> Compression:
    try:
        return layer_compression(descriptor.media_type)
    except UnsupportedManifest as exc:
        raise UnsupportedManifest(f"layer {descriptor.digest}: {exc.message}", image=ref.familiar) from exc


def _fetch_config(client: RegistryClient, ref: Reference, config: Descriptor, sink: BlobSink) -> bytes:
    """The config is small and needed in memory (DiffIDs); it goes into the sink too."""
    if sink.has(config.digest):
        raw = sink.read(config.digest)
        if compute_digest(raw, config.digest) == config.digest:
            return raw
    return download_to_memory(client, ref, config, sink)


def _diff_ids(config_raw: bytes, count: int, ref: Reference) -> list[str]:
    try:
        diff_ids = json.loads(config_raw)["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UnsupportedManifest("image config has no rootfs.diff_ids", image=ref.familiar) from exc
    if not isinstance(diff_ids, list) or len(diff_ids) != count:
        raise UnsupportedManifest(f"image config lists {len(diff_ids)} layers, the manifest {count}",
                                  image=ref.familiar)
    return [str(d) for d in diff_ids]


def _check_platform(config_raw: bytes, wanted: Platform | None, ref: Reference) -> None:
    """An explicitly requested platform must be what the image says it is (Docker checks too)."""
    if wanted is None:
        return
    found = Platform.from_descriptor(json.loads(config_raw))
    if found.os and found.architecture and not wanted.can_run(found):
        raise UnsupportedManifest(f"image is for {found}, not the requested {wanted}", image=ref.familiar)


__all__ = ["BlobProgress", "BlobSink", "BlobState", "BlobWriter", "Layer", "Progress", "PulledImage",
           "Resolved", "compute_digest", "download_blob", "fetch_manifest", "hasher_for", "pull",
           "remote_digest", "resolve"]
