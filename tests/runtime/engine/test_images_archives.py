"""Importing `docker save` tars and OCI image layouts, written by hand and converted by skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.images.archive import host_architecture
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.paths import EnginePaths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the store unpacks layers as root")


def layer(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layers: list[bytes], cmd: list[str]) -> bytes:
    doc = {"architecture": host_architecture(), "os": "linux", "created": "2024-01-02T03:04:05.123456789Z",
           "config": {"Cmd": cmd, "Env": None, "Labels": None},
           "rootfs": {"type": "layers", "diff_ids": [sha(blob) for blob in layers]}}
    return json.dumps(doc).encode()


BASE = layer({"etc/base": b"base", "etc/old": b"old"})
TOP = layer({"etc/top": b"top", "etc/.wh.old": b""})


def write_oci_layout(root: Path, *, tag: str = "latest", nested: bool = False) -> bytes:
    """An OCI layout with gzip layers; with `nested`, the tag points at a multi-platform index."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        (blobs / sha(data).removeprefix("sha256:")).write_bytes(data)
        return sha(data)

    config = config_for([BASE, TOP], ["echo", "oci"])
    compressed = [gzip.compress(blob, mtime=0) for blob in (BASE, TOP)]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(c),
                    "size": len(c)} for c in compressed],
    }).encode()
    descriptor = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
                  "size": len(manifest)}
    if nested:
        other = {**descriptor, "digest": "sha256:" + "0" * 64,
                 "platform": {"os": "linux", "architecture": "s390x-not-this"}}
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [other, {**descriptor, "platform": {
                                "os": "linux", "architecture": host_architecture()}}]}).encode()
        descriptor = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(index),
                      "size": len(index)}
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    return config


def write_docker_save(path: Path) -> bytes:
    config = config_for([BASE, TOP], ["echo", "docker"])
    config_name = sha(config).removeprefix("sha256:") + ".json"
    manifest = [{"Config": config_name, "RepoTags": ["example/saved:1", "saved:latest"],
                 "Layers": ["l0/layer.tar", "l1/layer.tar"]}]
    with tarfile.open(path, "w") as tar:
        for name, data in ((config_name, config), ("l0/layer.tar", BASE), ("l1/layer.tar", TOP),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return config


@pytest.fixture
def store(stackup_root: Path) -> ImageStore:
    return ImageStore(EnginePaths.from_env())


def assert_two_layer_image(store: ImageStore, ref: str, config: bytes) -> None:
    image = store.get(ref)
    assert image.id == sha(config)
    assert image.diff_ids == (sha(BASE), sha(TOP))
    lower, upper = store.layer_dirs(image)
    assert (lower / "etc/old").read_bytes() == b"old"
    assert (upper / "etc/old").is_char_device()  # the whiteout, ready for overlayfs
    assert image.created is not None and image.created.year == 2024


def test_docker_save_tar(store: ImageStore, tmp_path: Path) -> None:
    config = write_docker_save(tmp_path / "saved.tar")
    (image,) = store.import_archive(tmp_path / "saved.tar")
    assert image.refs == ("example/saved:1", "saved:latest")
    assert image.config.cmd == ("echo", "docker") and image.config.env == ()
    assert_two_layer_image(store, "saved", config)


def test_oci_layout_directory_and_tar(store: ImageStore, tmp_path: Path) -> None:
    config = write_oci_layout(tmp_path / "layout", tag="latest")
    (image,) = store.import_archive(tmp_path / "layout", "oci/dir")
    assert image.refs == ("oci/dir:latest",)
    assert_two_layer_image(store, "oci/dir", config)
    with tarfile.open(tmp_path / "layout.tar", "w") as tar:
        tar.add(tmp_path / "layout", arcname=".")
    (again,) = store.import_archive(tmp_path / "layout.tar")
    assert again.id == image.id and again.refs == ("oci/dir:latest",)  # a bare tag names nothing


def test_oci_index_picks_this_platform(store: ImageStore, tmp_path: Path) -> None:
    config = write_oci_layout(tmp_path / "layout", tag="registry.local/multi:2", nested=True)
    (image,) = store.import_archive(tmp_path / "layout")
    assert image.refs == ("registry.local/multi:2",)
    assert_two_layer_image(store, "registry.local/multi:2", config)


def test_layers_are_shared_between_archives(store: ImageStore, tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout")
    write_docker_save(tmp_path / "saved.tar")
    first = store.import_archive(tmp_path / "layout", "first")[0]
    inodes = [os.stat(d).st_ino for d in store.layer_dirs(first)]
    second = store.import_archive(tmp_path / "saved.tar")[0]
    assert first.id != second.id
    assert [os.stat(d).st_ino for d in store.layer_dirs(second)] == inodes
    assert len(list(store.paths.layers.iterdir())) == 2


def test_tampered_blob_is_refused(store: ImageStore, tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout")
    blobs = sorted((tmp_path / "layout/blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    victim = next(p for p in blobs if p.read_bytes()[:2] == b"\x1f\x8b")
    victim.write_bytes(gzip.compress(layer({"etc/evil": b"x"})))
    with pytest.raises(RuntimeFailure, match="digest mismatch"):
        store.import_archive(tmp_path / "layout", "x")


def test_wrong_diff_id_is_refused(store: ImageStore, tmp_path: Path) -> None:
    write_docker_save(tmp_path / "saved.tar")
    with tarfile.open(tmp_path / "saved.tar") as tar:  # unpacked as a directory archive
        for member in tar.getmembers():
            stream = tar.extractfile(member)
            assert stream is not None
            (tmp_path / "x" / member.name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "x" / member.name).write_bytes(stream.read())
    (tmp_path / "x/l1/layer.tar").write_bytes(layer({"etc/other": b"1"}))
    with pytest.raises(RuntimeFailure, match="DiffID"):
        store.import_archive(tmp_path / "x")


def test_not_an_archive(store: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeFailure, match="not an image archive"):
        store.import_archive(tmp_path / "empty")


def test_directory_archive_names_cannot_escape(store: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "secret.json").write_text("{}")
    (tmp_path / "a/manifest.json").write_text(json.dumps([{"Config": "../secret.json", "Layers": []}]))
    with pytest.raises(RuntimeFailure, match="unsafe archive entry"):
        store.import_archive(tmp_path / "a")


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_archives_written_by_skopeo(store: ImageStore, tmp_path: Path, transport: str) -> None:
    config = write_oci_layout(tmp_path / "layout", tag="latest")
    target = tmp_path / "out.tar"
    destination = f"{transport}:{target}:" + ("example/skopeo:v1" if transport == "docker-archive" else "v1")
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"oci:{tmp_path / 'layout'}:latest",
                    destination], check=True, capture_output=True)
    (image,) = store.import_archive(target, None if transport == "docker-archive" else "example/skopeo:v1")
    assert image.refs == ("example/skopeo:v1",)
    assert image.id == sha(config)  # skopeo keeps the config byte for byte
    lower, upper = store.layer_dirs(image)
    assert (lower / "etc/base").read_bytes() == b"base"
    assert (upper / "etc/top").read_bytes() == b"top"
    assert (upper / "etc/old").is_char_device()
