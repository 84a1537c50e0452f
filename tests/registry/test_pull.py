"""Pulls from a real registry (Debian's docker-registry on loopback, plain HTTP), fed by skopeo."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stackup.registry.client import RegistryClient
from stackup.registry.errors import DigestMismatch, ManifestUnknown, RegistryUnreachable, UnsupportedManifest
from stackup.registry.media import DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Compression
from stackup.registry.platform import Platform
from stackup.registry.pull import BlobProgress, BlobState, pull, remote_digest, resolve
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySink, blob_path, verify_diff_ids
from tests.registry._images import Layout, digest_of, layer_tar, payload
from tests.registry._registry import RegistryServer, free_port, skopeo

Client = Callable[..., RegistryClient]


def _push(server: RegistryServer, tmp_path: Path, repo: str, tag: str, layers: list[dict[str, bytes]],
          **image: str) -> tuple[Layout, str]:
    """Make an image and copy it into the registry with skopeo; (layout, manifest digest)."""
    layout = Layout()
    digest, raw = layout.image(layers, **image)
    name = f"oci-{repo.replace('/', '-')}-{tag}"
    directory = layout.write(tmp_path / name, {tag: (digest, raw, OCI_MANIFEST)})
    skopeo("copy", "--dest-tls-verify=false", f"oci:{directory}:{tag}", f"docker://{server.host}/{repo}:{tag}")
    return layout, digest


BASE = {"etc/os-release": b"ID=test\n", "bin/data": payload("base", 200_000)}


def test_pull_by_tag_then_by_digest(plain_registry: RegistryServer, tmp_path: Path,
                                    make_client: Client) -> None:
    layout, digest = _push(plain_registry, tmp_path, "team/app", "v1",
                           [BASE, {"app/one": payload("one", 50_000)}, {"app/two": b"two"}])
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{plain_registry.host}/team/app:v1"))
    assert inspected["Digest"] == digest  # skopeo kept our manifest byte for byte
    sink = DirectorySink(tmp_path / "sink")
    events: list[BlobProgress] = []
    client = make_client()
    pulled = pull(client, Reference.parse(f"{plain_registry.host}/team/app:v1"), sink, progress=events.append)
    assert pulled.resolved.digest == digest
    assert [layer.compression for layer in pulled.layers] == [Compression.GZIP] * 3
    assert set(pulled.downloaded) == {layer.digest for layer in pulled.layers}
    assert digest_of(pulled.config_raw) == pulled.config_digest
    for blob_digest in (pulled.config_digest, *pulled.downloaded):
        assert blob_path(sink.root, blob_digest).read_bytes() == layout.blobs[blob_digest]
    verify_diff_ids(sink.root, [(x.digest, x.compression, x.diff_id) for x in pulled.layers])
    done = {e.digest: e for e in events if e.state is BlobState.DONE}
    assert set(done) == set(pulled.downloaded)
    assert all(e.done == e.total for e in done.values())
    assert sink.partials() == []

    again = DirectorySink(tmp_path / "again")
    by_digest = pull(client, Reference.parse(f"{plain_registry.host}/team/app@{digest}"), again)
    assert by_digest.config_raw == pulled.config_raw and by_digest.diff_ids == pulled.diff_ids


def test_second_pull_downloads_only_new_layers(plain_registry: RegistryServer, tmp_path: Path,
                                               make_client: Client) -> None:
    _, _ = _push(plain_registry, tmp_path, "shared/a", "1", [BASE, {"a": payload("a", 30_000)}])
    _, _ = _push(plain_registry, tmp_path, "shared/b", "1", [BASE, {"b": payload("b", 30_000)}])
    sink = DirectorySink(tmp_path / "sink")
    client = make_client()
    first = pull(client, Reference.parse(f"{plain_registry.host}/shared/a:1"), sink)
    mark = plain_registry.log_mark()
    second = pull(client, Reference.parse(f"{plain_registry.host}/shared/b:1"), sink)
    assert first.layers[0].digest == second.layers[0].digest
    assert second.downloaded == (second.layers[1].digest,)
    # the registry's own access log: the config and the one new layer, nothing else
    blob_gets = plain_registry.requests_since(mark, '"GET /v2/shared/b/blobs/')
    assert len(blob_gets) == 2, blob_gets
    assert any(second.layers[1].digest in line for line in blob_gets)
    assert not any(second.layers[0].digest in line for line in blob_gets)
    mark = plain_registry.log_mark()
    warm = pull(client, Reference.parse(f"{plain_registry.host}/shared/b:1"), sink)
    assert warm.downloaded == () and warm.config_raw == second.config_raw
    assert plain_registry.requests_since(mark, '"GET /v2/shared/b/blobs/') == []  # a warm pull: manifest only


def test_corrupted_blob_is_refused_and_nothing_half_stored(plain_registry: RegistryServer, tmp_path: Path,
                                                            make_client: Client) -> None:
    _, _ = _push(plain_registry, tmp_path, "broken/app", "1", [BASE, {"x": payload("x", 100_000)}])
    ref = Reference.parse(f"{plain_registry.host}/broken/app:1")
    client = make_client()
    victim = resolve(client, ref).manifest.layers[1]
    data = plain_registry.blob_data(victim.digest)
    original = data.read_bytes()
    data.write_bytes(bytes(b ^ 0xFF for b in original[:64]) + original[64:])  # same size, other bytes
    sink = DirectorySink(tmp_path / "sink")
    try:
        with pytest.raises(DigestMismatch,
                           match=r"broken/app:1: blob sha256:\w+ arrived as .* nothing was stored"):
            pull(client, ref, sink)
    finally:
        data.write_bytes(original)
    assert not sink.has(victim.digest)
    assert sink.partials() == []
    pull(client, ref, sink)  # with the registry's copy repaired, the same pull completes
    assert sink.has(victim.digest)


def test_missing_tag_and_repository_are_clear(plain_registry: RegistryServer, tmp_path: Path,
                                              make_client: Client) -> None:
    _push(plain_registry, tmp_path, "exists/app", "1", [{"f": b"x"}])
    client = make_client()
    with pytest.raises(ManifestUnknown, match=rf"^{plain_registry.host}/exists/app:nope: tag nope not "
                                              "found in .*exists/app; check the tag"):
        resolve(client, Reference.parse(f"{plain_registry.host}/exists/app:nope"))
    # distribution 2.8 answers MANIFEST_UNKNOWN (not NAME_UNKNOWN) for a repository it never saw
    with pytest.raises(ManifestUnknown, match=rf"^{plain_registry.host}/no/such:1: tag 1 not found"):
        resolve(client, Reference.parse(f"{plain_registry.host}/no/such:1"))
    assert remote_digest(client, Reference.parse(f"{plain_registry.host}/exists/app:nope")) is None


def test_unreachable_registry_is_clear(make_client: Client) -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnreachable, match=rf"cannot reach registry {host} .*check the address"):
        resolve(make_client(), Reference.parse(f"{host}/app:1"))


def test_head_tracks_the_tag(plain_registry: RegistryServer, tmp_path: Path, make_client: Client) -> None:
    client = make_client()
    ref = Reference.parse(f"{plain_registry.host}/fresh/app:1")
    _, first = _push(plain_registry, tmp_path / "1", "fresh/app", "1", [{"v": b"1"}])
    mark = plain_registry.log_mark()
    assert remote_digest(client, ref) == first
    assert plain_registry.requests_since(mark, '"HEAD /v2/fresh/app/manifests/1')
    assert not plain_registry.requests_since(mark, '"GET /v2/fresh/app/manifests/')
    _, second = _push(plain_registry, tmp_path / "2", "fresh/app", "1", [{"v": b"2"}])
    assert second != first
    assert remote_digest(client, ref) == second


def test_two_platform_index(plain_registry: RegistryServer, tmp_path: Path, make_client: Client) -> None:
    layout = Layout()
    amd = layout.image([{"arch": b"amd64"}], arch="amd64")
    arm = layout.image([{"arch": b"arm64"}], arch="arm64", variant="v8")
    arm_platform = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    index_digest, index_raw = layout.index([(*amd, {"os": "linux", "architecture": "amd64"}),
                                            (*arm, arm_platform)])
    directory = layout.write(tmp_path / "multi", {"multi": (index_digest, index_raw, OCI_INDEX)})
    skopeo("copy", "--multi-arch", "all", "--dest-tls-verify=false", f"oci:{directory}:multi",
           f"docker://{plain_registry.host}/multi/app:1")
    client = make_client()
    ref = Reference.parse(f"{plain_registry.host}/multi/app:1")
    for wanted, manifest_digest, content in (("linux/amd64", amd[0], b"amd64"),
                                             ("linux/arm64", arm[0], b"arm64")):
        sink = DirectorySink(tmp_path / wanted.replace("/", "-"))
        pulled = pull(client, ref, sink, platform=Platform.parse(wanted))
        assert pulled.resolved.index_digest == index_digest == pulled.resolved.digest
        assert pulled.resolved.manifest_digest == manifest_digest
        assert pulled.diff_ids == (digest_of(layer_tar({"arch": content})),)
        assert json.loads(pulled.config_raw)["architecture"] == wanted.split("/")[1]
    default = resolve(client, ref)
    assert default.platform is not None and default.platform.os == "linux"
    with pytest.raises(UnsupportedManifest, match=r"no image for platform linux/s390x \(the registry has: "
                                                  r"linux/amd64, linux/arm64\)"):
        resolve(client, ref, Platform.parse("linux/s390x"))


def test_docker_schema2_image(plain_registry: RegistryServer, tmp_path: Path, make_client: Client) -> None:
    """skopeo converts our OCI image to Docker's schema 2 media types on the way in."""
    layout = Layout()
    digest, raw = layout.image([BASE, {"d": b"docker"}])
    directory = layout.write(tmp_path / "oci", {"1": (digest, raw, OCI_MANIFEST)})
    skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{directory}:1",
           f"docker://{plain_registry.host}/docker/app:1")
    sink = DirectorySink(tmp_path / "sink")
    pulled = pull(make_client(), Reference.parse(f"{plain_registry.host}/docker/app:1"), sink)
    assert pulled.resolved.manifest.media_type == DOCKER_MANIFEST
    assert {x.media_type for x in pulled.layers} == {DOCKER_LAYER_GZIP}
    verify_diff_ids(sink.root, [(x.digest, x.compression, x.diff_id) for x in pulled.layers])
