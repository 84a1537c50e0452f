"""Small real images for registry tests: layer tars made here, laid out as OCI image layouts
(which skopeo reads with `oci:DIR:TAG`) and as `DirectorySource` trees for our own push."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from stackup.registry.media import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass
class Layout:
    """Blobs plus the manifests naming them; `write` makes an OCI image layout directory."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def add(self, data: bytes) -> str:
        digest = digest_of(data)
        self.blobs[digest] = data
        return digest

    def image(self, layers: list[dict[str, bytes]], *, arch: str = "amd64", variant: str = "",
              compression: str = "gzip") -> tuple[str, bytes]:
        """(manifest digest, manifest bytes) of an image with one layer per files-dict."""
        descriptors, diff_ids = [], []
        for files in layers:
            plain = layer_tar(files)
            diff_ids.append(digest_of(plain))
            if compression == "zstd":
                blob, media_type = zstandard.ZstdCompressor().compress(plain), OCI_LAYER_ZSTD
            else:
                blob, media_type = gzip.compress(plain, mtime=0), OCI_LAYER_GZIP
            descriptors.append({"mediaType": media_type, "digest": self.add(blob), "size": len(blob)})
        config: dict[str, object] = {
            "architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        if variant:
            config["variant"] = variant
        config_raw = json.dumps(config, sort_keys=True).encode()
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": self.add(config_raw),
                               "size": len(config_raw)},
                    "layers": descriptors}
        raw = json.dumps(manifest, sort_keys=True).encode()
        return self.add(raw), raw

    def index(self, entries: list[tuple[str, bytes, dict[str, str]]]) -> tuple[str, bytes]:
        manifests = [{"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw), "platform": platform}
                     for digest, raw, platform in entries]
        raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests},
                         sort_keys=True).encode()
        return self.add(raw), raw

    def write(self, directory: Path, refs: dict[str, tuple[str, bytes, str]]) -> Path:
        """An OCI layout at `directory`; `refs` maps tag -> (digest, bytes, media type)."""
        for digest, data in self.blobs.items():
            path = directory / "blobs" / "sha256" / digest.removeprefix("sha256:")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        index = {"schemaVersion": 2, "manifests": [
            {"mediaType": media_type, "digest": digest, "size": len(raw),
             "annotations": {"org.opencontainers.image.ref.name": tag}}
            for tag, (digest, raw, media_type) in refs.items()]}
        (directory / "index.json").write_text(json.dumps(index))
        return directory


def payload(seed: str, size: int = 4096) -> bytes:
    """Incompressible-ish bytes so layers differ and have some weight."""
    out = bytearray()
    block = seed.encode()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])
