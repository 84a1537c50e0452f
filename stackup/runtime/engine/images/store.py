"""The engine's content-addressed image store.

Layout under `$STACKUP_ROOT/images` (see `EnginePaths`): `blobs/sha256/<hex>` holds configs and
layer tars exactly as imported; `layers/<chain-hex>/diff` holds each layer unpacked once, keyed by
ChainID so two images with the same base share the directories overlayfs stacks; `records/<hex>.json`
holds one record per image id (the sha256 of its config, as Docker computes it); `repositories.json`
maps normalised references to ids; `pulls.json` maps the references pulled from a registry to
their repo digest and the time of the last pull (for `pull_policy: daily` and `RepoDigests`).

Every write is tmp + rename, so a crash leaves either the old or the new file. Layers are unpacked
into a private staging dir and renamed into place; a concurrent import of the same layer loses the
rename race harmlessly. Imports hold `gc.lock` shared and removals hold it exclusively, so garbage
collection never deletes a layer that an unfinished import is about to reference.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stackup.errors import Conflict, NotFound, RuntimeFailure
from stackup.runtime.engine.images.archive import (
    Archive,
    ArchiveImage,
    host_architecture,
    open_archive,
    read_images,
)
from stackup.runtime.engine.images.layers import (
    Compression,
    chain_ids,
    detect_compression,
    pack_directory,
    unpack_layer,
)
from stackup.runtime.engine.images.ref import ImageRef, is_digest
from stackup.runtime.engine.images.unpacking import BACKGROUND, LOCKS
from stackup.runtime.wire.imageconfig import ImageConfig
from stackup.runtime.wire.images import Image, LayerRecord
from stackup.runtime.wire.paths import EnginePaths
from stackup.text import did_you_mean

_CHUNK = 1 << 20
_LAYER_MEDIA_TYPES = {
    Compression.NONE: "application/vnd.oci.image.layer.v1.tar",
    Compression.GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}




@dataclass(frozen=True, slots=True)
class Removal:
    """What `remove` did: the references it dropped and the image ids it deleted."""

    untagged: tuple[str, ...]
    deleted: tuple[str, ...]


class _Record(BaseModel):
    """The on-disk record; the config itself stays in its blob, byte for byte."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    layers: tuple[LayerRecord, ...]
    loaded: datetime
    manifest: str | None = None
    """A pulled image's manifest blob, kept byte for byte: a push of it keeps its digest."""
    manifest_media_type: str | None = None


def _hex(digest: str) -> str:
    if not is_digest(digest):
        raise RuntimeFailure(f"invalid digest {digest!r} (only sha256 is supported)")
    return digest.removeprefix("sha256:")


def _with_size(layer: LayerRecord, unpacked: LayerRecord | None) -> LayerRecord:
    if unpacked is None or unpacked.size == layer.size:
        return layer
    return layer.model_copy(update={"size": unpacked.size})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _atomic_write(path: Path, data: bytes, *, sync: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if sync:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _flock(path: Path, *, shared: bool = False) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


class ImageStore:
    """Import, look up and remove images; hand overlayfs the layer directories of one."""

    def __init__(self, paths: EnginePaths) -> None:
        self.paths = paths
        for directory in (paths.blobs / "sha256", paths.layers, paths.image_records, paths.tmp,
                          paths.images / "buildcache"):
            directory.mkdir(parents=True, exist_ok=True)
        paths.images.chmod(0o700)  # layers hold images' device nodes and set-id files: root only
        self._index_file = paths.images / "repositories.json"
        self._pulls_file = paths.images / "pulls.json"
        self._gc_lock = paths.images / "gc.lock"
        self._index_lock = paths.images / "index.lock"

    # -- import --------------------------------------------------------------------------------

    def import_rootfs(self, source: Path, ref: str, *, config: dict[str, Any] | None = None,
                      created_by: str | None = None) -> Image:
        """One-layer image from a rootfs directory or tar; `config` is the OCI `config` section."""
        parsed = ImageRef.parse(ref)
        try:
            image_config = ImageConfig.model_validate(config or {})
        except ValidationError as exc:
            raise RuntimeFailure(f"invalid image config for {ref}: {exc}") from exc
        if not source.exists():
            raise NotFound(f"cannot import {source}: no such file or directory")
        with _flock(self._gc_lock, shared=True):
            if source.is_dir():
                fd, tmp = tempfile.mkstemp(dir=self.paths.tmp, prefix="rootfs-", suffix=".tar")
                try:
                    with os.fdopen(fd, "wb") as out:
                        pack_directory(source, out)
                    with open(tmp, "rb") as packed:
                        digest = self._store_blob(packed)
                finally:
                    os.unlink(tmp)
            else:
                with open(source, "rb") as blob:
                    digest = self._store_blob(blob)
            layer = self._ensure_layer(digest, None, None)
            now = _now()
            document = {
                "created": now,
                "architecture": host_architecture(),
                "os": "linux",
                "config": image_config.to_wire(),
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                "history": [{"created": now,
                             "created_by": created_by or f"stackup image import {source.name}"}],
            }
            raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
            return self._commit(raw, (layer,), (parsed,))

    def import_archive(self, path: Path, ref: str | None = None) -> list[Image]:
        """Load a `docker save` tar or an OCI image layout (directory or tar).

        `ref` names the image when the archive holds exactly one; otherwise the archive's own
        names (RepoTags, `io.containerd.image.name`, a full `ref.name` annotation) are used.
        """
        parsed = ImageRef.parse(ref) if ref else None
        with _flock(self._gc_lock, shared=True), open_archive(path) as archive:
            entries = read_images(archive)
            if parsed is not None and len(entries) != 1:
                raise RuntimeFailure(f"{path} holds {len(entries)} images; cannot name them all {ref}")
            return [self._import_entry(archive, entry, parsed) for entry in entries]

    def add_layer(self, base: str, layer_tar: Path, ref: str | None, *, created_by: str,
                  comment: str = "") -> Image:
        """A new image: `base`'s layers and config plus the layer tar `layer_tar` (`commit`)."""
        refs = (ImageRef.parse(ref),) if ref else ()
        with _flock(self._gc_lock, shared=True):
            image = self.get(base)
            document = json.loads(self.config_bytes(image.id))
            with open(layer_tar, "rb") as blob:
                digest = self._store_blob(blob)
            parent = chain_ids(image.diff_ids)[-1] if image.diff_ids else None
            layer = self._ensure_layer(digest, parent, None)
            now = _now()
            step = {"created": now, "created_by": created_by} | ({"comment": comment} if comment else {})
            document |= {
                "created": now,
                "rootfs": {"type": "layers", "diff_ids": [*image.diff_ids, layer.diff_id]},
                "history": [*(document.get("history") or ()), step],
            }
            raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
            return self._commit(raw, (*image.layers, layer), refs)

    def _import_entry(self, archive: Archive, entry: ArchiveImage, ref: ImageRef | None) -> Image:
        config = json.loads(entry.config)
        diff_ids = list(config.get("rootfs", {}).get("diff_ids") or [])
        if len(diff_ids) != len(entry.layers):
            raise RuntimeFailure(
                f"image config lists {len(diff_ids)} layers but the manifest has {len(entry.layers)}")
        layers: list[LayerRecord] = []
        parent: str | None = None
        for (name, expected_digest), diff_id in zip(entry.layers, diff_ids, strict=True):
            with archive.open(name) as blob:
                digest = self._store_blob(blob, expected_digest)
            layers.append(self._ensure_layer(digest, parent, diff_id))
            parent = chain_ids([parent, diff_id])[-1] if parent else diff_id
        refs = (ref,) if ref else tuple(ImageRef.parse(name) for name in entry.names)
        return self._commit(entry.config, tuple(layers), refs)

    def _store_blob(self, source: IO[bytes], expected: str | None = None) -> str:
        """Copy a blob in while hashing it; an expected digest that does not match is refused."""
        if expected and self.blob_path(expected).exists():
            return expected
        fd, tmp = tempfile.mkstemp(dir=self.paths.blobs / "sha256", prefix=".tmp-")
        hasher = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
            digest = "sha256:" + hasher.hexdigest()
            if expected and digest != expected:
                raise RuntimeFailure(f"blob digest mismatch: expected {expected}, got {digest}")
            os.replace(tmp, self.blob_path(digest))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return digest

    def _ensure_layer(self, digest: str, parent: str | None, diff_id: str | None) -> LayerRecord:
        """Unpack a blob as the layer above `parent` unless that ChainID is already unpacked."""
        blob = self.blob_path(digest)
        with open(blob, "rb") as head:
            media_type = _LAYER_MEDIA_TYPES[detect_compression(head.read(4))]
        if diff_id is not None:
            meta = self._layer_dir(self._chain(parent, diff_id)) / "layer.json"
            if meta.exists():
                size = int(json.loads(meta.read_bytes())["size"])
                return LayerRecord(digest=digest, diff_id=diff_id, size=size, media_type=media_type)
        staging = Path(tempfile.mkdtemp(dir=self.paths.layers, prefix=".tmp-"))
        try:
            (staging / "diff").mkdir()
            with open(blob, "rb") as stream:
                info = unpack_layer(stream, staging / "diff", hash_blob=False)  # verified when stored
            if diff_id is not None and info.diff_id != diff_id:
                raise RuntimeFailure(f"layer {digest}: DiffID is {info.diff_id}, config says {diff_id}")
            chain = self._chain(parent, info.diff_id)
            meta_doc = {"chain_id": chain, "parent": parent, "diff_id": info.diff_id, "size": info.size}
            (staging / "layer.json").write_text(json.dumps(meta_doc, sort_keys=True))
            with contextlib.suppress(OSError):
                os.rename(staging, self._layer_dir(chain))  # fails only if another import won
            if not (self._layer_dir(chain) / "layer.json").exists():
                raise RuntimeFailure(f"cannot store layer {chain} in {self.paths.layers}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return LayerRecord(digest=digest, diff_id=info.diff_id, size=info.size, media_type=media_type)

    @staticmethod
    def _chain(parent: str | None, diff_id: str) -> str:
        return chain_ids([parent, diff_id])[-1] if parent else diff_id

    def _commit(self, config: bytes, layers: tuple[LayerRecord, ...], refs: tuple[ImageRef, ...],
                manifest: tuple[str, str] | None = None) -> Image:
        image_id = "sha256:" + hashlib.sha256(config).hexdigest()
        with _flock(self._index_lock):
            if not self.blob_path(image_id).exists():
                _atomic_write(self.blob_path(image_id), config)
            record_path = self._record_path(image_id)
            old = self._read_record(image_id)
            same_blobs = old is not None and [x.digest for x in old.layers] == [x.digest for x in layers]
            if old is None or (manifest is not None and old.manifest != manifest[0] and same_blobs):
                record = _Record(id=image_id, layers=old.layers if old else layers,
                                 loaded=old.loaded if old else datetime.now(UTC),
                                 manifest=manifest[0] if manifest else None,
                                 manifest_media_type=manifest[1] if manifest else None)
                _atomic_write(record_path, record.model_dump_json().encode())
            index = self._read_index()
            if any(index.get(r.full) != image_id for r in refs):  # a warm pull changes nothing
                index.update({r.full: image_id for r in refs})
                self._write_index(index)
        return self._load(image_id, index)

    # -- seams for registry pulls (images/pulling.py) -----------------------------------------

    def import_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) for a whole import or pull: GC never deletes what it is about to record."""
        return _flock(self._gc_lock, shared=True)

    def record_pull(self, config: bytes, layers: tuple[LayerRecord, ...], ref: ImageRef,
                    repo_digest: str, manifest: tuple[bytes, str] | None = None) -> Image:
        """Record a pulled image under `ref`, with the digest the registry gave it and the time.

        Its blobs are stored and verified; its layers need not be unpacked yet (`layer_dirs`
        unpacks them; until then a layer's size is its blob's). `manifest` (bytes, media type)
        is kept as a blob so that pushing the image again sends the same manifest."""
        kept: tuple[str, str] | None = None
        if manifest is not None:
            raw, media_type = manifest
            digest = "sha256:" + hashlib.sha256(raw).hexdigest()
            if not self.blob_path(digest).exists():
                _atomic_write(self.blob_path(digest), raw, sync=False)
            kept = (digest, media_type)
        image = self._commit(config, layers, (ref,), kept)
        with _flock(self._index_lock):
            pulls = self._read_pulls()
            pulls[ref.full] = {"id": image.id, "digest": repo_digest, "pulled": _now()}
            # advisory (when to pull again): no fsync, a crash at worst forgets one pull time
            _atomic_write(self._pulls_file, json.dumps(pulls, sort_keys=True, indent=1).encode(), sync=False)
        return self.get(image.id)

    def collect_garbage_if_idle(self) -> bool:
        """GC now unless an import or pull is running (it would wait for them); True if it ran."""
        fd = os.open(self._gc_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            with _flock(self._index_lock):
                self._collect_garbage()
            return True
        finally:
            os.close(fd)

    # -- lookup ---------------------------------------------------------------------------------

    def get(self, ref_or_id: str) -> Image:
        """By full or abbreviated id, or by reference (`busybox` means docker.io/library/busybox:latest)."""
        index = self._read_index()
        return self._load(self._resolve(ref_or_id, index)[0], index)

    def list(self) -> list[Image]:
        index = self._read_index()
        images = []
        for path in self.paths.image_records.glob("*.json"):
            with contextlib.suppress(NotFound):  # removed while we were listing
                images.append(self._load("sha256:" + path.stem, index))
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(images, key=lambda i: (i.created or epoch, i.id), reverse=True)

    def tag(self, ref_or_id: str, new_ref: str) -> Image:
        parsed = ImageRef.parse(new_ref)
        with _flock(self._index_lock):
            index = self._read_index()
            image_id, _ = self._resolve(ref_or_id, index)
            index[parsed.full] = image_id
            self._write_index(index)
        return self._load(image_id, index)

    def layer_dirs(self, image: Image) -> builtins.list[Path]:
        """The unpacked layers of `image`, lowest first, ready to be overlayfs lowerdirs.

        Layers not unpacked yet (a pull stores blobs only: `unpacking.py`) are unpacked now, or
        waited for when another thread is at it, each DiffID checked against the config."""
        chains = chain_ids(image.diff_ids)
        missing = [i for i, chain in enumerate(chains)
                   if not (self._layer_dir(chain) / "layer.json").exists()]
        if missing:  # a background unpack of this image is as good as ours, and already started
            BACKGROUND.wait(image.id)
            missing = [i for i in missing if not (self._layer_dir(chains[i]) / "layer.json").exists()]
        if missing:
            self._unpack_missing(image, chains, missing)
        return [self._layer_dir(chain) / "diff" for chain in chains]

    def _unpack_missing(self, image: Image, chains: builtins.list[str], missing: builtins.list[int]) -> None:
        name = image.refs[0] if image.refs else image.short_id
        unpacked: dict[int, LayerRecord] = {}
        with _flock(self._gc_lock, shared=True):
            if self._read_record(image.id) is None:
                raise NotFound(f"image {name} was removed")
            for i in missing:
                layer = image.layers[i]
                if not self.blob_path(layer.digest).is_file():
                    raise RuntimeFailure(f"image {name}: layer {layer.digest[7:19]} is missing from the "
                                         "store; remove the image and pull or import it again")
                with LOCKS.hold(str(self._layer_dir(chains[i]))):
                    try:
                        unpacked[i] = self._ensure_layer(layer.digest, chains[i - 1] if i else None,
                                                         layer.diff_id)
                    except RuntimeFailure as exc:
                        raise RuntimeFailure(
                            f"image {name}: {exc}: the image is damaged, no container runs from it; "
                            f"remove it (`stackup image rm {name}`) and pull it again") from exc
            self._note_sizes(image.id, unpacked)

    def _note_sizes(self, image_id: str, unpacked: dict[int, LayerRecord]) -> None:
        """Once unpacked, a layer's recorded size is its files' (it was its blob's until then)."""
        with _flock(self._index_lock):
            record = self._read_record(image_id)
            if record is None:
                return
            layers = tuple(_with_size(layer, unpacked.get(i)) for i, layer in enumerate(record.layers))
            if layers != record.layers:
                updated = record.model_copy(update={"layers": layers})
                _atomic_write(self._record_path(image_id), updated.model_dump_json().encode(), sync=False)

    def pulled_manifest(self, image_id: str) -> tuple[bytes, str] | None:
        """The manifest (bytes, media type) `image_id` was pulled with, if it was pulled."""
        record = self._read_record(image_id)
        if record is None or record.manifest is None:
            return None
        try:
            return self.blob_path(record.manifest).read_bytes(), record.manifest_media_type or ""
        except FileNotFoundError:
            return None

    def config_bytes(self, image_id: str) -> bytes:
        """The image's config JSON exactly as stored (its sha256 is the image id)."""
        try:
            return self.blob_path(image_id).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"image {image_id} not found") from exc

    def blob_path(self, digest: str) -> Path:
        return self.paths.blobs / "sha256" / _hex(digest)

    def _resolve(self, ref_or_id: str, index: dict[str, str]) -> tuple[str, bool]:
        """(image id, whether it was named by a reference rather than an id)."""
        if is_digest(ref_or_id) and self._record_path(ref_or_id).exists():
            return ref_or_id, False
        with contextlib.suppress(RuntimeFailure):
            found = index.get(ImageRef.parse(ref_or_id).full)
            if found:
                return found, True
        prefix = ref_or_id.removeprefix("sha256:")
        if 4 <= len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix):
            matches = [p.stem for p in self.paths.image_records.glob(f"{prefix}*.json")]
            if len(matches) > 1:
                raise RuntimeFailure(f"image id prefix {ref_or_id!r} is ambiguous ({len(matches)} images)")
            if matches:
                return "sha256:" + matches[0], False
        known = sorted({ImageRef.parse(name).familiar for name in index})
        try:
            query = ImageRef.parse(ref_or_id).familiar  # compare like with like: `x` vs `x:latest`
        except RuntimeFailure:
            query = ref_or_id
        hint = did_you_mean(query, known)
        raise NotFound(f'image "{ref_or_id}" not found' + (f" ({hint})" if hint else "")
                       + f"; import it with `stackup image import <rootfs-or-archive> {ref_or_id}`")

    def _load(self, image_id: str, index: dict[str, str]) -> Image:
        try:
            record = _Record.model_validate_json(self._record_path(image_id).read_bytes())
            config = json.loads(self.blob_path(image_id).read_bytes())
        except FileNotFoundError as exc:
            raise NotFound(f"image {image_id} not found") from exc
        names = [name for name, i in index.items() if i == image_id]
        refs = sorted(ImageRef.parse(name).familiar for name in names)
        pulls = self._read_pulls()
        pulled = [pulls[n] for n in names if n in pulls and pulls[n].get("id") == image_id]
        return Image(
            id=image_id, refs=tuple(refs), created=config.get("created"),
            size=sum(layer.size for layer in record.layers),
            architecture=config.get("architecture", ""), os=config.get("os", "linux"),
            config=ImageConfig.model_validate(config.get("config") or {}), layers=record.layers,
            repo_digests=tuple(sorted({f"{ImageRef.parse(n).familiar_name}@{pulls[n]['digest']}"
                                       for n in names if n in pulls and pulls[n].get("id") == image_id})),
            last_pulled=max((p["pulled"] for p in pulled), default=None))

    # -- removal --------------------------------------------------------------------------------

    def remove(self, ref: str, *, force: bool = False, in_use: frozenset[str] = frozenset()) -> Removal:
        """Like `docker rmi`: naming one of several tags only untags; naming an image by id with
        several tags needs `force`. Images in `in_use` (ids used by containers) are never deleted,
        forced or not: their layers are some container's mounted lowerdirs."""
        with _flock(self._gc_lock), _flock(self._index_lock):
            index = self._read_index()
            image_id, by_ref = self._resolve(ref, index)
            tags = sorted(name for name, i in index.items() if i == image_id)
            if by_ref and len(tags) > 1:
                full = ImageRef.parse(ref).full
                del index[full]
                self._write_index(index)
                return Removal(untagged=(ImageRef.parse(full).familiar,), deleted=())
            if len(tags) > 1 and not force:
                names = ", ".join(ImageRef.parse(t).familiar for t in tags)
                raise Conflict(f"image {image_id[7:19]} is tagged as {names}; remove the tags "
                               "first or force the removal")
            if image_id in in_use:
                raise Conflict(f"image {ref} ({image_id[7:19]}) is used by a container: remove that first")
            for tag in tags:
                del index[tag]
            self._write_index(index)
            self._record_path(image_id).unlink()
            self._collect_garbage()
            return Removal(untagged=tuple(ImageRef.parse(t).familiar for t in tags), deleted=(image_id,))

    def prune(self, in_use: set[str], *, dangling_only: bool = True) -> builtins.list[str]:
        """Delete untagged images (or, with `dangling_only=False`, every image) not in `in_use`."""
        with _flock(self._gc_lock), _flock(self._index_lock):
            index = self._read_index()
            tagged = set(index.values())
            deleted = []
            for path in self.paths.image_records.glob("*.json"):
                image_id = "sha256:" + path.stem
                if image_id in in_use or (dangling_only and image_id in tagged):
                    continue
                path.unlink()
                deleted.append(image_id)
            self._write_index({name: i for name, i in index.items() if i not in deleted})
            self._collect_garbage()
        return sorted(deleted)

    def _collect_garbage(self) -> None:
        """Drop layers and blobs no record references (caller holds gc.lock exclusively)."""
        chains: set[str] = set()
        blobs: set[str] = set()
        for path in self.paths.image_records.glob("*.json"):
            record = _Record.model_validate_json(path.read_bytes())
            chains.update(_hex(c) for c in chain_ids([layer.diff_id for layer in record.layers]))
            blobs.update(_hex(layer.digest) for layer in record.layers)
            blobs.add(path.stem)
            if record.manifest:
                blobs.add(_hex(record.manifest))
        for entry in self.build_cache_dir.glob("*.json"):  # layers the build cache still offers
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                pin = json.loads(entry.read_bytes())
                chains.update(_hex(c) for c in chain_ids(pin["diff_ids"]))
                if pin.get("layer"):
                    blobs.add(_hex(pin["layer"]["digest"]))
        for layer in self.paths.layers.iterdir():
            if layer.name not in chains:  # includes staging dirs left by a crashed import
                shutil.rmtree(layer, ignore_errors=True)
        for blob in (self.paths.blobs / "sha256").iterdir():
            if blob.name not in blobs:
                blob.unlink(missing_ok=True)

    # -- builds ---------------------------------------------------------------------------------

    @property
    def build_cache_dir(self) -> Path:
        """Build cache entries (`engine/builder/cache.py`); garbage collection keeps their layers."""
        return self.paths.images / "buildcache"

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Held by a build from its first layer to its image: no removal collects what it uses."""
        with _flock(self._gc_lock, shared=True):
            yield

    def has_layer(self, diff_ids: builtins.list[str]) -> bool:
        """Whether the layer these DiffIDs chain to is unpacked (its parents are then too)."""
        return not diff_ids or (self._layer_dir(chain_ids(diff_ids)[-1]) / "layer.json").exists()

    def adopt_layer(self, tar: Path, diff: Path, parent_diff_ids: builtins.list[str]) -> LayerRecord:
        """Take a layer the builder made: `tar` (uncompressed, so its digest is the DiffID) becomes
        the blob and `diff`, the same content in overlay form (an overlay upper dir), is moved in
        as the unpacked layer. Both are consumed. Call inside `building()`."""
        with open(tar, "rb") as stream:
            hasher = hashlib.sha256()
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
        digest = "sha256:" + hasher.hexdigest()
        size = tar.stat().st_size
        os.replace(tar, self.blob_path(digest))
        chain = self._chain(chain_ids(parent_diff_ids)[-1] if parent_diff_ids else None, digest)
        if (self._layer_dir(chain) / "layer.json").exists():
            shutil.rmtree(diff, ignore_errors=True)
        else:
            staging = Path(tempfile.mkdtemp(dir=self.paths.layers, prefix=".tmp-"))
            try:
                os.rename(diff, staging / "diff")
                meta_doc = {"chain_id": chain, "parent": chain_ids(parent_diff_ids)[-1] if parent_diff_ids
                            else None, "diff_id": digest, "size": size}
                (staging / "layer.json").write_text(json.dumps(meta_doc, sort_keys=True))
                with contextlib.suppress(OSError):
                    os.rename(staging, self._layer_dir(chain))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        media_type = _LAYER_MEDIA_TYPES[Compression.NONE]
        return LayerRecord(digest=digest, diff_id=digest, size=size, media_type=media_type)

    def collect_garbage(self) -> None:
        """Drop layers and blobs nothing names (after a build cache prune). Not inside `building()`."""
        with _flock(self._gc_lock), _flock(self._index_lock):
            self._collect_garbage()

    def create_image(self, config: bytes, layers: tuple[LayerRecord, ...], refs: tuple[str, ...]) -> Image:
        """Record an image whose layers are already in the store (a build's result)."""
        return self._commit(config, layers, tuple(ImageRef.parse(r) for r in refs))

    # -- files ----------------------------------------------------------------------------------

    def _layer_dir(self, chain: str) -> Path:
        return self.paths.layers / _hex(chain)

    def _record_path(self, image_id: str) -> Path:
        return self.paths.image_records / f"{_hex(image_id)}.json"

    def _read_record(self, image_id: str) -> _Record | None:
        try:
            return _Record.model_validate_json(self._record_path(image_id).read_bytes())
        except FileNotFoundError:
            return None

    def _read_index(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self._index_file.read_bytes())
        except FileNotFoundError:
            return {}
        return data

    def _read_pulls(self) -> dict[str, dict[str, str]]:
        try:
            data: dict[str, dict[str, str]] = json.loads(self._pulls_file.read_bytes())
        except FileNotFoundError:
            return {}
        return data

    def _write_index(self, index: dict[str, str]) -> None:
        _atomic_write(self._index_file, json.dumps(index, sort_keys=True, indent=1).encode())
