"""`image save`: images as one tar that `docker load`, `podman load` and `stackup image load` read.

The tar is both formats at once, as Docker 25 writes it: an OCI image layout (`oci-layout`,
`index.json`, `blobs/sha256/...`) whose blobs the Docker table of contents (`manifest.json`,
`repositories`) points into. Layers go out as stored (compressed or not: every loader detects
it), so saving costs one copy of each blob and no recompression.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stackup.errors import InvalidRequest, RuntimeFailure
from stackup.runtime.engine.images.archive import CONTAINERD_NAME, OCI_INDEX, OCI_MANIFEST, REF_NAME
from stackup.runtime.engine.images.ref import ImageRef
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.images import Image

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYOUT = json.dumps({"imageLayoutVersion": "1.0.0"}).encode()


@dataclass(frozen=True, slots=True)
class _Saved:
    image: Image
    tags: tuple[ImageRef, ...]


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _blob(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _select(store: ImageStore, names: Sequence[str]) -> list[_Saved]:
    """Each name once; a reference saves that tag, an id every tag of the image (as Docker)."""
    if not names:
        raise InvalidRequest("name at least one image to save (?names=REF)")
    chosen: dict[str, list[ImageRef]] = {}
    images: dict[str, Image] = {}
    for name in names:
        image = store.get(name)
        images[image.id] = image
        tags = chosen.setdefault(image.id, [])
        try:
            ref = ImageRef.parse(name)
        except RuntimeFailure:
            ref = None
        named = [ImageRef.parse(r) for r in image.refs]
        if ref is not None and ref.familiar in image.refs:
            named = [ref]
        tags.extend(t for t in named if t not in tags)
    return [_Saved(images[i], tuple(tags)) for i, tags in chosen.items()]


def write_archive(store: ImageStore, names: Sequence[str], out: IO[bytes]) -> None:
    """Write the images `names` (references or ids) as a docker-archive + OCI layout tar."""
    saved = _select(store, names)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        written: set[str] = set()
        manifest_json: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        index: list[dict[str, Any]] = []
        for item in saved:
            image = item.image
            for layer in image.layers:
                if layer.digest not in written:
                    _add_file(tar, _blob(layer.digest), store.blob_path(layer.digest))
                    written.add(layer.digest)
            config = store.config_bytes(image.id)
            _add_bytes(tar, _blob(image.id), config)
            manifest = _json({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": image.id, "size": len(config)},
                "layers": [{"mediaType": layer.media_type, "digest": layer.digest,
                            "size": store.blob_path(layer.digest).stat().st_size} for layer in image.layers],
            })
            digest = _add_blob(tar, manifest, written)
            descriptor = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}
            for tag in item.tags or (None,):
                annotations = {} if tag is None else {CONTAINERD_NAME: tag.full, REF_NAME: tag.tag or ""}
                index.append(descriptor | ({"annotations": annotations} if annotations else {}))
            manifest_json.append({
                "Config": _blob(image.id), "RepoTags": [t.familiar for t in item.tags],
                "Layers": [_blob(layer.digest) for layer in image.layers],
            })
            for tag in item.tags:
                top = image.layers[-1].digest.removeprefix("sha256:") if image.layers else ""
                repositories.setdefault(tag.familiar.rsplit(":", 1)[0], {})[tag.tag or "latest"] = top
        _add_bytes(tar, "oci-layout", _LAYOUT)
        _add_bytes(tar, "index.json", _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}))
        _add_bytes(tar, "manifest.json", _json(manifest_json))
        _add_bytes(tar, "repositories", _json(repositories))


def _add_blob(tar: tarfile.TarFile, data: bytes, written: set[str]) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if digest not in written:
        _add_bytes(tar, _blob(digest), data)
        written.add(digest)
    return digest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = path.stat().st_size, 0o644
    with open(path, "rb") as data:
        tar.addfile(info, data)
