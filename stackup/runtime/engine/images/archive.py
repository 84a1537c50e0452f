"""Read image archives: `docker save` tars and OCI image layouts (a directory or a tar of one).

Both formats are a bag of named files plus a JSON table of contents, so one `Archive` interface
over "directory" and "tar" serves both readers. Names come from the archive and are untrusted: a
directory archive refuses any name that resolves outside it, and OCI blob names are only ever
built from validated `sha256:` digests. Digests are verified by the store while it copies blobs.
"""

from __future__ import annotations

import contextlib
import json
import platform
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from stackup.errors import InvalidRequest, NotFound, RuntimeFailure
from stackup.runtime.engine.images.ref import ImageRef, is_digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_INDEX_TYPES = {OCI_INDEX, DOCKER_LIST}
_MANIFEST_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


class Archive(Protocol):
    """Named files of an archive."""

    def has(self, name: str) -> bool: ...

    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...


@dataclass(frozen=True, slots=True)
class ArchiveImage:
    """One image found in an archive: its config bytes, its layer files (with the digest the
    manifest promises, when it names one) and the names it was saved under."""

    config: bytes
    layers: tuple[tuple[str, str | None], ...]
    names: tuple[str, ...]


class _DirArchive:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _path(self, name: str) -> Path:
        path = (self._root / name).resolve()
        if not path.is_relative_to(self._root):
            raise RuntimeFailure(f"unsafe archive entry {name!r}: outside {self._root}")
        return path

    def has(self, name: str) -> bool:
        return self._path(name).is_file()

    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        path = self._path(name)
        if not path.is_file():
            raise RuntimeFailure(f"malformed archive: {name} is missing from {self._root}")
        return path.open("rb")


class _TarArchive:
    """Random access into a tar; `extractfile` resolves the symlinked layers older `docker save`
    writes, from within the archive only."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self._members = {m.name.removeprefix("./"): m for m in tar.getmembers()}

    def has(self, name: str) -> bool:
        return name in self._members

    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        member = self._members.get(name)
        stream = self._tar.extractfile(member) if member is not None else None
        if stream is None:
            raise RuntimeFailure(f"malformed archive: {name} is missing or not a file")
        return stream


@contextlib.contextmanager
def open_archive(path: Path) -> Iterator[Archive]:
    if path.is_dir():
        yield _DirArchive(path)
        return
    if not path.is_file():
        raise NotFound(f"cannot import {path}: no such file or directory")
    try:
        with tarfile.open(path, "r:*") as tar:
            yield _TarArchive(tar)
    except tarfile.TarError as exc:
        raise InvalidRequest(f"{path} is not a tar archive: {exc}") from exc


def read_images(archive: Archive) -> list[ArchiveImage]:
    """Prefer `manifest.json` (it carries Docker's tags) over an OCI `index.json`."""
    if archive.has("manifest.json"):
        return _docker_images(archive)
    if archive.has("oci-layout") and archive.has("index.json"):
        return _oci_images(archive)
    raise RuntimeFailure("not an image archive: expected manifest.json (docker save) or "
                         "oci-layout and index.json (OCI image layout)")


def _read_json(archive: Archive, name: str) -> Any:
    with archive.open(name) as stream:
        data = stream.read()
    try:
        return json.loads(data)
    except ValueError as exc:
        raise RuntimeFailure(f"malformed archive: {name} is not JSON: {exc}") from exc


def _read(archive: Archive, name: str) -> bytes:
    with archive.open(name) as stream:
        return stream.read()


def _docker_images(archive: Archive) -> list[ArchiveImage]:
    entries = _read_json(archive, "manifest.json")
    if not isinstance(entries, list):
        raise RuntimeFailure("malformed docker archive: manifest.json is not a list")
    images = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise RuntimeFailure("malformed docker archive: a manifest.json entry has no Config")
        images.append(ArchiveImage(config=_read(archive, entry["Config"]),
                                   layers=tuple((name, None) for name in entry.get("Layers") or ()),
                                   names=tuple(entry.get("RepoTags") or ())))
    return images


def _blob_name(digest: str) -> str:
    if not is_digest(digest):
        raise RuntimeFailure(f"malformed OCI layout: unsupported digest {digest!r}")
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def host_architecture() -> str:
    """The host's architecture in Go's spelling, as image configs and platforms write it."""
    return _GOARCH.get(platform.machine(), platform.machine())


def _host_platform(descriptor: dict[str, Any]) -> bool:
    wanted = host_architecture()
    found = descriptor.get("platform") or {}
    return bool(found.get("os", "linux") == "linux" and found.get("architecture", wanted) == wanted)


def _oci_images(archive: Archive) -> list[ArchiveImage]:
    index = _read_json(archive, "index.json")
    images = []
    for descriptor in index.get("manifests") or ():
        manifest = _resolve_manifest(archive, descriptor)
        annotations = descriptor.get("annotations") or {}
        names = tuple(n for n in (annotations.get(CONTAINERD_NAME), annotations.get(REF_NAME))
                      if n and _is_full_name(n))
        images.append(ArchiveImage(
            config=_read(archive, _blob_name(manifest["config"]["digest"])),
            layers=tuple((_blob_name(d["digest"]), d["digest"]) for d in manifest.get("layers") or ()),
            names=names[:1]))
    if not images:
        raise RuntimeFailure("OCI layout has no images in index.json")
    return images


def _resolve_manifest(archive: Archive, descriptor: dict[str, Any]) -> dict[str, Any]:
    """Follow nested indexes to the manifest for this host's platform."""
    for _ in range(8):
        media_type = descriptor.get("mediaType")
        document: dict[str, Any] = _read_json(archive, _blob_name(descriptor["digest"]))
        media_type = media_type or document.get("mediaType")
        if media_type in _MANIFEST_TYPES or (media_type is None and "config" in document):
            return document
        if media_type not in _INDEX_TYPES:
            raise RuntimeFailure(f"malformed OCI layout: unsupported media type {media_type!r}")
        matches = [d for d in document.get("manifests") or () if _host_platform(d)]
        if not matches:
            raise RuntimeFailure(f"OCI layout has no manifest for linux/{host_architecture()}")
        descriptor = matches[0]
    raise RuntimeFailure("malformed OCI layout: indexes nested too deeply")


def _is_full_name(name: str) -> bool:
    """`ref.name` is often just a tag (`latest`); only a name with a repository is a reference."""
    if ":" not in name and "/" not in name:
        return False
    try:
        ImageRef.parse(name)
    except RuntimeFailure:
        return False
    return True
