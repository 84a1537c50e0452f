"""Push with our own code into a real registry, then read it back (ours and skopeo's view)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stackup.registry.client import RegistryClient
from stackup.registry.errors import DigestMismatch
from stackup.registry.media import OCI_INDEX, Compression, ImageManifest, parse_manifest
from stackup.registry.platform import Platform
from stackup.registry.pull import BlobProgress, BlobState, pull
from stackup.registry.push import PushResult, push_blob, push_image, push_index, push_manifest
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySink, DirectorySource, verify_diff_ids
from tests.registry._images import Layout, digest_of, payload
from tests.registry._registry import RegistryServer, skopeo

Client = Callable[..., RegistryClient]


def _source(layout: Layout, directory: Path) -> DirectorySource:
    for digest, data in layout.blobs.items():
        path = directory / "blobs" / "sha256" / digest.removeprefix("sha256:")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return DirectorySource(directory)


def test_push_then_pull_round_trips(plain_registry: RegistryServer, tmp_path: Path,
                                    make_client: Client) -> None:
    layout = Layout()
    digest, raw = layout.image([{"a": payload("p1", 70_000)}, {"b": payload("p2", 10_000)}])
    client = make_client()
    ref = Reference.parse(f"{plain_registry.host}/pushed/app:1")
    events: list[BlobProgress] = []
    assert push_image(client, ref, raw, _source(layout, tmp_path / "src"), progress=events.append) == digest
    assert {e.digest for e in events if e.state is BlobState.DONE} == set(layout.blobs) - {digest}
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref.full}"))
    assert inspected["Digest"] == digest and len(inspected["Layers"]) == 2
    sink = DirectorySink(tmp_path / "sink")
    pulled = pull(client, ref, sink)
    assert pulled.resolved.manifest_raw == raw
    verify_diff_ids(sink.root, [(x.digest, x.compression, x.diff_id) for x in pulled.layers])
    # pushing again sends no blob: every HEAD says it exists
    mark = plain_registry.log_mark()
    push_image(client, ref, raw, _source(layout, tmp_path / "src"))
    assert not plain_registry.requests_since(mark, '"PUT /v2/pushed/app/blobs/uploads/')
    assert not plain_registry.requests_since(mark, '"POST /v2/pushed/app/blobs/uploads/')


def test_cross_repository_mount_sends_no_bytes(plain_registry: RegistryServer, tmp_path: Path,
                                               make_client: Client) -> None:
    layout = Layout()
    _, raw = layout.image([{"big": payload("mount", 300_000)}])
    client = make_client()
    origin = Reference.parse(f"{plain_registry.host}/mount/origin:1")
    target = Reference.parse(f"{plain_registry.host}/mount/target:1")
    source = _source(layout, tmp_path / "src")
    push_image(client, origin, raw, source)
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    mark = plain_registry.log_mark()
    layer = manifest.layers[0]
    assert push_blob(client, target, layer, source, mount_from=[origin]) is PushResult.MOUNTED
    assert plain_registry.requests_since(mark, f"mount=sha256%3A{layer.digest.removeprefix('sha256:')}")
    assert not plain_registry.requests_since(mark, '"PUT /v2/mount/target/blobs/uploads/')
    push_image(client, target, raw, source, mount_from=[origin])
    assert pull(client, target, DirectorySink(tmp_path / "sink")).resolved.manifest_raw == raw


def test_chunked_upload_and_zstd_layers(plain_registry: RegistryServer, tmp_path: Path,
                                        make_client: Client) -> None:
    layout = Layout()
    digest, raw = layout.image([{"z": payload("zstd", 250_000)}], compression="zstd")
    client = make_client(upload_chunk_size=64 * 1024)  # 250 kB of zstd-incompressible data: 4 PATCHes
    ref = Reference.parse(f"{plain_registry.host}/chunked/app:1")
    mark = plain_registry.log_mark()
    push_image(client, ref, raw, _source(layout, tmp_path / "src"))
    assert len(plain_registry.requests_since(mark, '"PATCH /v2/chunked/app/blobs/uploads/')) == 4
    sink = DirectorySink(tmp_path / "sink")
    pulled = pull(client, ref, sink)
    assert pulled.resolved.digest == digest
    assert pulled.layers[0].compression is Compression.ZSTD
    verify_diff_ids(sink.root, [(x.digest, x.compression, x.diff_id) for x in pulled.layers])


def test_push_index_and_manifest_by_digest(plain_registry: RegistryServer, tmp_path: Path,
                                           make_client: Client) -> None:
    layout = Layout()
    amd = layout.image([{"arch": b"amd64"}], arch="amd64")
    arm = layout.image([{"arch": b"arm"}], arch="arm", variant="v7")
    index_digest, index_raw = layout.index([(*amd, {"os": "linux", "architecture": "amd64"}),
                                            (*arm, {"os": "linux", "architecture": "arm", "variant": "v7"})])
    client = make_client()
    ref = Reference.parse(f"{plain_registry.host}/pushed/multi:1")
    source = _source(layout, tmp_path / "src")
    assert push_index(client, ref, index_raw, dict([amd, arm]), source) == index_digest
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref.full}")
    assert json.loads(raw)["mediaType"] == OCI_INDEX and digest_of(raw.encode()) == index_digest
    pulled = pull(client, ref, DirectorySink(tmp_path / "sink"), platform=Platform.parse("linux/arm/v7"))
    assert pulled.resolved.manifest_digest == arm[0]
    untagged = Reference.parse(f"{plain_registry.host}/pushed/bydigest")
    push_image(client, untagged.with_tag("x"), amd[1], source)
    assert push_manifest(client, Reference(untagged.domain, untagged.path, None), amd[1],
                         "application/vnd.oci.image.manifest.v1+json") == amd[0]
    by_digest = untagged.with_digest(amd[0])
    assert pull(client, by_digest, DirectorySink(tmp_path / "sink2")).resolved.manifest_raw == amd[1]


def test_damaged_local_blob_is_refused_by_the_registry(plain_registry: RegistryServer, tmp_path: Path,
                                                       make_client: Client) -> None:
    layout = Layout()
    _, raw = layout.image([{"f": payload("damaged", 5000)}])
    source = _source(layout, tmp_path / "src")
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    layer = manifest.layers[0]
    path = source.root / "blobs" / "sha256" / layer.digest.removeprefix("sha256:")
    path.write_bytes(b"\0" * layer.size)
    with pytest.raises(DigestMismatch, match="local copy is damaged"):
        push_image(make_client(), Reference.parse(f"{plain_registry.host}/pushed/damaged:1"), raw, source)
