"""Manifest documents and endpoint rules, without a network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackup.registry.config import RegistryConfig
from stackup.registry.errors import RegistryError, UnsupportedManifest
from stackup.registry.media import (
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_LAYER,
    OCI_LAYER_ZSTD,
    Compression,
    ImageIndex,
    ImageManifest,
    layer_compression,
    parse_manifest,
)
from stackup.registry.platform import Platform
from stackup.registry.transport import Transport

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def _doc(**fields: object) -> bytes:
    return json.dumps({"schemaVersion": 2, **fields}).encode()


def test_docker_schema2_manifest() -> None:
    parsed = parse_manifest(_doc(mediaType=DOCKER_MANIFEST,
                                 config={"mediaType": "x", "digest": D1, "size": 3},
                                 layers=[{"mediaType": DOCKER_LAYER_GZIP, "digest": D2, "size": 10}]))
    assert isinstance(parsed, ImageManifest)
    assert parsed.config.digest == D1 and parsed.layers[0].size == 10
    assert layer_compression(parsed.layers[0].media_type) is Compression.GZIP


def test_media_type_from_header_or_shape() -> None:
    body = _doc(config={"digest": D1, "size": 1}, layers=[])
    assert isinstance(parse_manifest(body), ImageManifest)
    index = _doc(manifests=[{"mediaType": DOCKER_MANIFEST, "digest": D1, "size": 1,
                             "platform": {"os": "linux", "architecture": "arm64"}}])
    parsed = parse_manifest(index, DOCKER_MANIFEST_LIST + "; charset=utf-8")
    assert isinstance(parsed, ImageIndex) and parsed.media_type == DOCKER_MANIFEST_LIST
    assert parsed.manifests[0].platform == Platform("linux", "arm64", "v8")


def test_attestations_are_not_images() -> None:
    index = parse_manifest(_doc(mediaType="application/vnd.oci.image.index.v1+json", manifests=[
        {"mediaType": "m", "digest": D1, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "m", "digest": D2, "size": 1, "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
    ]))
    assert isinstance(index, ImageIndex)
    assert [d.digest for d in index.images()] == [D1]


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), "schema 1"),
    (_doc(mediaType="application/vnd.example+json"), "unsupported manifest media type"),
    (_doc(mediaType=DOCKER_MANIFEST, config={"digest": "sha256:short", "size": 1}, layers=[]),
     "bad or unsupported"),
    (_doc(mediaType=DOCKER_MANIFEST, config={"digest": D1, "size": -1}, layers=[]), "bad size"),
    (_doc(mediaType=DOCKER_MANIFEST, config={"digest": D1, "size": 1}), "no `layers`"),
])
def test_refused_documents(body: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedManifest, match=reason):
        parse_manifest(body)


def test_layer_compressions() -> None:
    assert layer_compression(OCI_LAYER) is Compression.NONE
    assert layer_compression(OCI_LAYER_ZSTD) is Compression.ZSTD
    with pytest.raises(UnsupportedManifest, match="unknown layer media type"):
        layer_compression("application/vnd.example.layer")


def test_endpoints_follow_dockers_rules(tmp_path: Path) -> None:
    transport = Transport(RegistryConfig(insecure_registries=("reg.internal:5000", "10.1.0.0/16"),
                                         mirrors=("192.0.2.10", "http://127.0.0.1:5001/"),
                                         certs_dir=tmp_path))
    try:
        hub = [(e.base, e.verify, e.mirror) for e in transport.endpoints("docker.io")]
        assert hub == [("https://192.0.2.10", True, True), ("http://127.0.0.1:5001", False, True),
                       ("https://registry-1.docker.io", True, False)]
        assert [e.base for e in transport.endpoints("docker.io", push=True)] == ["https://registry-1.docker.io"]
        assert [(e.base, e.verify) for e in transport.endpoints("reg.internal:5000")] == [
            ("https://reg.internal:5000", False), ("http://reg.internal:5000", False)]
        assert [e.base for e in transport.endpoints("10.1.2.3:80")] == ["https://10.1.2.3:80", "http://10.1.2.3:80"]
        assert [e.base for e in transport.endpoints("127.0.0.1:5000")][-1] == "http://127.0.0.1:5000"
        assert [e.base for e in transport.endpoints("[::1]:5000")][-1] == "http://[::1]:5000"
        assert [e.base for e in transport.endpoints("10.2.0.1")] == ["https://10.2.0.1"]
    finally:
        transport.close()
    strict = Transport(RegistryConfig(loopback_insecure=False, certs_dir=tmp_path))
    assert [e.base for e in strict.endpoints("127.0.0.1:5000")] == ["https://127.0.0.1:5000"]
    strict.close()


def test_config_from_docker_daemon_json(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text(json.dumps({"insecure-registries": ["reg.internal:5000", "10.0.0.0/8"],
                                  "registry-mirrors": ["https://mirror.internal"], "debug": True}))
    config = RegistryConfig.from_daemon_json(daemon, max_concurrent_downloads=6)
    assert config.insecure_registries == ("reg.internal:5000", "10.0.0.0/8")
    assert config.mirrors == ("https://mirror.internal",)
    assert config.max_concurrent_downloads == 6
    assert RegistryConfig.from_daemon_json(tmp_path / "absent.json").mirrors == ()
    daemon.write_text("{")
    with pytest.raises(RegistryError, match=r"cannot read .*daemon\.json"):
        RegistryConfig.from_daemon_json(daemon)
