"""The engine's pulls into its image store, against a real `docker-registry` on loopback: a pull
ends when its blobs are verified, layers are unpacked afterwards (in the background or by whatever
needs them first) with DiffIDs checked, a damaged image is refused where a container needs it,
a failed pull leaves nothing, and a pulled image pushed again keeps its manifest digest."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.registry.auth import Credentials, store_credentials
from stackup.registry.client import RegistryClient
from stackup.registry.config import RegistryConfig
from stackup.registry.errors import DigestMismatch
from stackup.registry.media import OCI_MANIFEST
from stackup.registry.push import push_image
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySource, blob_path
from stackup.runtime.engine.images.layers import chain_ids
from stackup.runtime.engine.images.pulling import CLIENTS, pull_image, push_stored, resume_unpacks
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.images.unpacking import BACKGROUND
from stackup.runtime.native.credentials import credentials_for
from stackup.runtime.wire.paths import EnginePaths
from tests.registry._images import Layout, digest_of, payload
from tests.registry._registry import Pki, RegistryServer, htpasswd_line
from tests.registry.conftest import PASSWORD, USER

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("docker-registry") is None,
                                reason="needs root (layers keep owners) and Debian's docker-registry")


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    root = Path(tempfile.mkdtemp(prefix="stackup-pulling-"))
    try:
        with RegistryServer(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def store(stackup_root: Path) -> Iterator[ImageStore]:
    yield ImageStore(EnginePaths.from_env())
    CLIENTS.close()
    assert BACKGROUND.idle(60), "a background unpack is still running"


@pytest.fixture
def config(tmp_path: Path) -> RegistryConfig:
    return RegistryConfig(docker_config=tmp_path / "no-docker" / "config.json", retries=1)


def _push(server: RegistryServer, config: RegistryConfig, tmp_path: Path, repo: str, layout: Layout,
          raw: bytes) -> str:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    for digest, data in layout.blobs.items():
        path = blob_path(root, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with RegistryClient(config) as client:
        return push_image(client, Reference.parse(f"{server.host}/{repo}"), raw, DirectorySource(root),
                          media_type=OCI_MANIFEST)


def _damaged(layers: list[dict[str, bytes]]) -> tuple[Layout, bytes]:
    """An image whose blobs are all intact but whose config promises another DiffID for the top
    layer: only unpacking can tell."""
    layout = Layout()
    _, raw = layout.image(layers)
    manifest = json.loads(raw)
    config = json.loads(layout.blobs[manifest["config"]["digest"]])
    config["rootfs"]["diff_ids"][-1] = digest_of(b"not this layer")
    config_raw = json.dumps(config, sort_keys=True).encode()
    manifest["config"] = {**manifest["config"], "digest": layout.add(config_raw), "size": len(config_raw)}
    raw = json.dumps(manifest, sort_keys=True).encode()
    layout.add(raw)
    return layout, raw


def _unpacked(store: ImageStore) -> set[str]:
    return {p.name for p in store.paths.layers.iterdir() if (p / "layer.json").exists()}


def test_pull_stores_blobs_then_layers_unpack_with_real_sizes(
        store: ImageStore, registry: RegistryServer, config: RegistryConfig, tmp_path: Path) -> None:
    layout = Layout()
    _, raw = layout.image([{"etc/base": payload("base", 200_000)}, {"app/bin": payload("app", 100_000)}])
    digest = _push(registry, config, tmp_path, "lazy/app:v1", layout, raw)
    image = pull_image(store, f"{registry.host}/lazy/app:v1", config=config)
    for layer in image.layers:  # every blob is there, verified, before the pull returns
        assert store.blob_path(layer.digest).is_file()
    assert BACKGROUND.idle(60)  # the background unpack (a child process) did them all
    chains = [c.removeprefix("sha256:") for c in chain_ids(image.diff_ids)]
    assert set(chains) <= _unpacked(store)
    dirs = store.layer_dirs(store.get(image.id))
    assert [(d / "etc/base").exists() for d in dirs] == [True, False]
    assert (dirs[1] / "app/bin").read_bytes() == payload("app", 100_000)
    sizes = [layer.size for layer in store.get(image.id).layers]
    assert sizes[0] >= 200_000 and sizes[1] >= 100_000  # files', not the (smaller) blobs'
    assert store.get(image.id).repo_digests == (f"{registry.host}/lazy/app@{digest}",)


def test_starts_racing_the_background_unpack_all_get_complete_layers(
        store: ImageStore, registry: RegistryServer, config: RegistryConfig, tmp_path: Path) -> None:
    layout = Layout()
    _, raw = layout.image([{f"l{i}/data": payload(f"race{i}", 400_000)} for i in range(4)])
    _push(registry, config, tmp_path, "lazy/race:v1", layout, raw)
    image = pull_image(store, f"{registry.host}/lazy/race:v1", config=config)
    results: list[list[Path]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(store.layer_dirs(image))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(r == results[0] for r in results)
    for i, directory in enumerate(results[0]):
        assert (directory / f"l{i}/data").read_bytes() == payload(f"race{i}", 400_000)
        assert (directory.parent / "layer.json").exists()
    assert not [p for p in store.paths.layers.iterdir() if p.name.startswith(".tmp-")]


def test_a_damaged_layer_is_refused_when_a_container_needs_it(
        store: ImageStore, registry: RegistryServer, config: RegistryConfig, tmp_path: Path) -> None:
    layout, raw = _damaged([{"ok": payload("ok", 10_000)}, {"bad": payload("bad", 10_000)}])
    _push(registry, config, tmp_path, "lazy/damaged:v1", layout, raw)
    ref = f"{registry.host}/lazy/damaged:v1"
    image = pull_image(store, ref, config=config)  # its blobs are intact: the pull itself succeeds
    with pytest.raises(RuntimeFailure) as caught:
        store.layer_dirs(image)
    message = str(caught.value)
    assert ref in message and "DiffID" in message and "damaged" in message and "pull it again" in message
    assert BACKGROUND.idle(60)  # it failed the same way, and cleaned up after itself
    top = chain_ids(image.diff_ids)[-1].removeprefix("sha256:")
    assert top not in _unpacked(store)  # the bad layer never became a layer directory
    assert not [p for p in store.paths.layers.iterdir() if p.name.startswith(".tmp-")]


def test_a_failed_pull_leaves_nothing(store: ImageStore, registry: RegistryServer,
                                      config: RegistryConfig, tmp_path: Path) -> None:
    layout = Layout()
    _, raw = layout.image([{"x": payload("x", 50_000)}, {"y": payload("y", 60_000)}])
    _push(registry, config, tmp_path, "lazy/broken:v1", layout, raw)
    victim = json.loads(raw)["layers"][1]["digest"]
    data = registry.blob_data(victim)
    data.write_bytes(bytes(b ^ 0xFF for b in data.read_bytes()))
    images = store.paths.images
    before = sorted(str(p.relative_to(images)) for p in images.rglob("*") if "lock" not in p.name)
    with pytest.raises(DigestMismatch, match=victim):
        pull_image(store, f"{registry.host}/lazy/broken:v1", config=config)
    after = sorted(str(p.relative_to(images)) for p in images.rglob("*") if "lock" not in p.name)
    assert after == before


def test_a_pulled_image_pushed_again_keeps_its_digest(
        store: ImageStore, registry: RegistryServer, config: RegistryConfig, tmp_path: Path) -> None:
    layout = Layout()
    _, raw = layout.image([{"keep": payload("keep", 30_000)}])
    # a manifest laid out differently from ours (indented, keys unsorted): only its bytes hash to it
    raw = json.dumps(json.loads(raw), indent=3).encode()
    digest = _push(registry, config, tmp_path, "keep/src:v1", layout, raw)
    image = pull_image(store, f"{registry.host}/keep/src:v1", config=config)
    store.tag(image.id, f"{registry.host}/keep/dst:v1")
    assert push_stored(store, f"{registry.host}/keep/dst:v1", config=config) == digest
    # the kept manifest survives garbage collection while the image exists
    store.collect_garbage()
    assert store.pulled_manifest(image.id) == (raw, OCI_MANIFEST)


@pytest.fixture(scope="module")
def secure_mirror() -> Iterator[tuple[RegistryServer, Path]]:
    """A TLS + htpasswd registry to serve as a Docker Hub mirror; (server, certs.d directory)."""
    root = Path(tempfile.mkdtemp(prefix="stackup-pulling-mirror-"))
    try:
        pki = Pki(root / "pki")
        htpasswd = root / "htpasswd"
        htpasswd.write_text(htpasswd_line(USER, PASSWORD) + "\n")
        with RegistryServer(root, tls=pki.issue("server"), htpasswd=htpasswd) as server:
            certs = root / "certs.d"
            (certs / server.host).mkdir(parents=True)
            shutil.copy(pki.ca_path, certs / server.host / "ca.crt")
            yield server, certs
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_mirror_gets_the_callers_credentials_for_it(
        store: ImageStore, secure_mirror: tuple[RegistryServer, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The client sends the caller's login for the mirror host the engine's daemon.json names, and
    the engine uses it there: the Docker Hub image comes from the private mirror alone."""
    server, certs = secure_mirror
    docker = tmp_path / "docker" / "config.json"
    store_credentials(docker, server.host, Credentials(USER, PASSWORD))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker.parent))
    daemon = tmp_path / "daemon.json"
    daemon.write_text(json.dumps({"registry-mirrors": [f"https://{server.host}"]}))
    auth = credentials_for("mirrored/app:v1", daemon_json=(daemon,))
    assert [a.host for a in auth] == [server.host]

    layout = Layout()
    _, raw = layout.image([{"from/the/mirror": payload("mirror", 20_000)}])
    pusher = RegistryConfig(docker_config=docker, certs_dir=certs, retries=1)
    _push(server, pusher, tmp_path, "mirrored/app:v1", layout, raw)
    engine = RegistryConfig.from_daemon_json(daemon, docker_config=tmp_path / "none.json", certs_dir=certs,
                                             retries=1)
    mark = server.log_mark()
    image = pull_image(store, "mirrored/app:v1", auth=auth, config=engine)
    assert image.refs == ("mirrored/app:v1",)
    assert server.requests_since(mark, "GET /v2/mirrored/app/manifests/v1")
    dirs = store.layer_dirs(image)
    assert (dirs[0] / "from/the/mirror").read_bytes() == payload("mirror", 20_000)


def test_layers_left_packed_by_a_stopped_engine_are_unpacked_at_the_next_start(
        store: ImageStore, registry: RegistryServer, config: RegistryConfig, tmp_path: Path) -> None:
    layout = Layout()
    _, raw = layout.image([{"resume/me": payload("resume", 50_000)}])
    _push(registry, config, tmp_path, "lazy/resume:v1", layout, raw)
    image = pull_image(store, f"{registry.host}/lazy/resume:v1", config=config)
    assert BACKGROUND.idle(60)
    layer = store.paths.layers / chain_ids(image.diff_ids)[-1].removeprefix("sha256:")
    shutil.rmtree(layer)  # as if the engine had stopped before its background unpack
    assert resume_unpacks(store) == 1
    assert BACKGROUND.idle(60)
    assert (layer / "layer.json").exists()
    assert (layer / "diff" / "resume/me").read_bytes() == payload("resume", 50_000)
    assert resume_unpacks(store) == 0
