"""Push: blobs (skipped when present, mounted across repositories when possible), then manifests.

Order matters to registries: every blob a manifest references must exist before the manifest is
PUT, and an index's child manifests before the index. A blob is first checked with HEAD; failing
that, `mount_from` repositories on the same registry are asked for a cross-repository mount
(`POST ...?mount=DIGEST&from=REPO`, no bytes sent); failing that, it is uploaded in one PUT, or
in PATCH chunks of `upload_chunk_size` when larger. The registry's digest is checked at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from enum import StrEnum
from typing import IO, Protocol

import httpx

from stackup.registry.blobs import BlobProgress, BlobState, Progress, compute_digest
from stackup.registry.client import RegistryClient, scope
from stackup.registry.errors import DigestMismatch, RegistryError, UnsupportedManifest
from stackup.registry.media import Descriptor, ImageIndex, ImageManifest, parse_manifest
from stackup.registry.reference import Reference

_CHUNK = 1 << 20


class BlobSource(Protocol):
    """Where pushed blobs come from; `open` yields a seekable binary file."""

    def open(self, digest: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...


class PushResult(StrEnum):
    EXISTS = "exists"
    MOUNTED = "mounted"
    UPLOADED = "uploaded"


def _push_scopes(ref: Reference, mounts: Sequence[Reference] = ()) -> tuple[str, ...]:
    return (scope(ref, "pull", "push"), *(scope(m, "pull") for m in mounts))


def push_blob(client: RegistryClient, ref: Reference, descriptor: Descriptor, source: BlobSource, *,
              mount_from: Sequence[Reference] = (), progress: Progress | None = None) -> PushResult:
    """Make `descriptor`'s blob exist in `ref`'s repository with as few bytes sent as possible."""
    digest = descriptor.digest
    if client.exists(ref, f"blobs/{digest}", scopes=_push_scopes(ref), push=True) is not None:
        if progress:
            progress(BlobProgress(digest, descriptor.media_type, BlobState.EXISTS, descriptor.size,
                                  descriptor.size))
        return PushResult.EXISTS
    location = None
    for origin in (m for m in mount_from if m.domain == ref.domain and m.path != ref.path):
        response = client.request("POST", ref, "blobs/uploads/", scopes=_push_scopes(ref, (origin,)),
                                  params={"mount": digest, "from": origin.path}, push=True)
        if response.status_code == 201:
            if progress:
                progress(BlobProgress(digest, descriptor.media_type, BlobState.EXISTS, descriptor.size,
                                      descriptor.size))
            return PushResult.MOUNTED
        if response.status_code == 202:
            location = _location(client, ref, response)  # the registry opened an upload instead
            break
        raise client.error(response, ref, f"mount of blob {digest} from {origin.path}")
    if location is None:
        response = client.request("POST", ref, "blobs/uploads/", scopes=_push_scopes(ref), push=True)
        if response.status_code != 202:
            raise client.error(response, ref, f"upload of blob {digest}")
        location = _location(client, ref, response)
    with source.open(digest) as blob:
        _upload(client, ref, descriptor, blob, location=location, progress=progress)
    return PushResult.UPLOADED


def _location(client: RegistryClient, ref: Reference, response: httpx.Response) -> str:
    found = response.headers.get("location")
    if not found:
        raise RegistryError(f"registry {ref.domain} opened an upload without a Location header",
                            image=ref.familiar)
    return str(httpx.URL(client.base_url(ref) + "/").join(found))


def _with_digest(location: str, digest: str) -> str:
    """Add `digest=` to an upload URL, keeping the registry's own query (`_state=...`)."""
    return str(httpx.URL(location).copy_merge_params({"digest": digest}))


def _reader(blob: IO[bytes], start: int, length: int,
            on_bytes: Callable[[int], None]) -> Callable[[], Iterator[bytes]]:
    def body() -> Iterator[bytes]:
        blob.seek(start)
        left = length
        while left > 0:
            chunk = blob.read(min(_CHUNK, left))
            if not chunk:
                raise RegistryError(f"blob file ended {left} bytes early while uploading")
            left -= len(chunk)
            on_bytes(len(chunk))
            yield chunk
    return body


def _upload(client: RegistryClient, ref: Reference, descriptor: Descriptor, blob: IO[bytes], *,
            location: str, progress: Progress | None) -> None:
    digest, size = descriptor.digest, descriptor.size
    sent = 0

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n
        if progress:
            progress(BlobProgress(digest, descriptor.media_type, BlobState.DOWNLOADING, min(sent, size),
                                  size))

    scopes = _push_scopes(ref)
    chunk = client.config.upload_chunk_size
    octets = {"Content-Type": "application/octet-stream"}
    if size <= chunk:
        response = client.request("PUT", ref, "", url=_with_digest(location, digest), scopes=scopes,
                                  push=True, body=_reader(blob, 0, size, on_bytes),
                                  headers={**octets, "Content-Length": str(size)})
    else:
        for start in range(0, size, chunk):
            length = min(chunk, size - start)
            response = client.request(
                "PATCH", ref, "", url=location, scopes=scopes, push=True,
                body=_reader(blob, start, length, on_bytes),
                headers={**octets, "Content-Length": str(length),
                         "Content-Range": f"{start}-{start + length - 1}"})
            if response.status_code != 202:
                raise client.error(response, ref, f"upload of blob {digest} (bytes {start}+)")
            location = _location(client, ref, response)
        response = client.request("PUT", ref, "", url=_with_digest(location, digest), scopes=scopes,
                                  push=True, body=b"", headers={"Content-Length": "0"})
    if response.status_code != 201:
        if response.status_code == 400 and b"DIGEST_INVALID" in response.content:
            raise DigestMismatch(f"registry computed another digest than {digest} for the uploaded blob; "
                                 "the local copy is damaged", image=ref.familiar)
        raise client.error(response, ref, f"upload of blob {digest}")
    stored = response.headers.get("docker-content-digest")
    if stored and stored != digest:
        raise DigestMismatch(f"registry stored blob {digest} as {stored}", image=ref.familiar)
    if progress:
        progress(BlobProgress(digest, descriptor.media_type, BlobState.DONE, size, size))


def push_manifest(client: RegistryClient, ref: Reference, raw: bytes, media_type: str,
                  reference: str | None = None) -> str:
    """PUT a manifest under `reference` (default: the tag of `ref`, else its digest); its digest."""
    digest = compute_digest(raw)
    target = reference or ref.tag or digest
    response = client.request("PUT", ref, f"manifests/{target}", scopes=_push_scopes(ref), push=True,
                              body=raw, headers={"Content-Type": media_type})
    if response.status_code not in (200, 201):
        raise client.error(response, ref, f"manifest {target}")
    stored = response.headers.get("docker-content-digest")
    if stored and stored != digest:
        raise DigestMismatch(f"registry stored the manifest as {stored}, expected {digest}",
                             image=ref.familiar)
    return digest


def push_image(client: RegistryClient, ref: Reference, manifest_raw: bytes, source: BlobSource, *,
               media_type: str | None = None, reference: str | None = None,
               mount_from: Sequence[Reference] = (), progress: Progress | None = None) -> str:
    """Push one image (config + layers from `source`, then its manifest); returns the manifest digest."""
    manifest = parse_manifest(manifest_raw, media_type or "")
    if not isinstance(manifest, ImageManifest):
        raise UnsupportedManifest("push_image takes an image manifest; use push_index for an index",
                                  image=ref.familiar)
    unique = {d.digest: d for d in (manifest.config, *manifest.layers)}
    workers = max(1, min(client.config.max_concurrent_uploads, len(unique)))
    with ThreadPoolExecutor(workers, thread_name_prefix="push") as pool:
        futures = [pool.submit(push_blob, client, ref, d, source, mount_from=mount_from, progress=progress)
                   for d in unique.values()]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.done() and not future.cancelled() and (error := future.exception()) is not None:
                raise error
    return push_manifest(client, ref, manifest_raw, manifest.media_type, reference)


def push_index(client: RegistryClient, ref: Reference, index_raw: bytes, children: Mapping[str, bytes],
               source: BlobSource, *, media_type: str | None = None,
               mount_from: Sequence[Reference] = (), progress: Progress | None = None) -> str:
    """Push an index: each child image by digest (`children` maps digest -> manifest bytes), then it."""
    index = parse_manifest(index_raw, media_type or "")
    if not isinstance(index, ImageIndex):
        raise UnsupportedManifest("push_index takes an index (manifest list)", image=ref.familiar)
    for entry in index.manifests:
        raw = children.get(entry.digest)
        if raw is None:
            raise RegistryError(f"index entry {entry.digest} has no manifest among the children given",
                                image=ref.familiar)
        if compute_digest(raw, entry.digest) != entry.digest:
            raise DigestMismatch(f"child manifest does not hash to {entry.digest}", image=ref.familiar)
        push_image(client, ref, raw, source, media_type=entry.media_type, reference=entry.digest,
                   mount_from=mount_from, progress=progress)
    return push_manifest(client, ref, index_raw, index.media_type)
