"""Registry pulls and pushes for the engine's image store, over `stackup.registry`.

A pull streams verified blobs straight into the store's blob directory (`StoreSink`: a private
temporary file renamed to its digest only after the client verified size and digest) and
records the image once every blob is there, with the manifest it came with (a push of the image
sends it again, so the digest stays). Layers are unpacked afterwards, in the background and by
whatever needs them first, DiffIDs checked (`unpacking.py`). The store's GC lock is held shared
for the whole pull, so garbage collection never deletes a committed blob no record references
yet. A failed pull records nothing, and what it stored is collected at once (unless another
import is running, in which case the next collection takes it).

Credentials arrive with the request (`RegistryAuth`, resolved by the client as the invoking
user); the engine never reads root's Docker config. Registry settings (insecure registries,
mirrors) come from `/etc/stackup/daemon.json`, else `/etc/docker/daemon.json`, as Docker reads them.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from stackup.errors import NotFound, RuntimeFailure, StackupError
from stackup.registry.auth import Credentials
from stackup.registry.blobs import BlobProgress, BlobState
from stackup.registry.client import RegistryClient
from stackup.registry.config import DAEMON_JSON, RegistryConfig, daemon_json
from stackup.registry.errors import RegistryError
from stackup.registry.media import OCI_CONFIG, OCI_MANIFEST
from stackup.registry.platform import Platform
from stackup.registry.pull import pull
from stackup.registry.push import push_image
from stackup.registry.reference import Reference
from stackup.registry.sinks import BlobFile
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.images.unpacking import BACKGROUND
from stackup.runtime.wire.images import Image, LayerRecord, RegistryAuth, TransferEvent, TransferState

_NO_DOCKER_CONFIG = Path("/nonexistent/stackup-engine/config.json")

Report = Callable[[TransferEvent], None]


def registry_config(candidates: Sequence[Path] = DAEMON_JSON) -> RegistryConfig:
    """The first daemon.json that exists decides; credentials never come from root's HOME."""
    path = daemon_json(candidates)
    if path is not None:
        return RegistryConfig.from_daemon_json(path, docker_config=_NO_DOCKER_CONFIG)
    return RegistryConfig(docker_config=_NO_DOCKER_CONFIG)


class _Clients:
    """Registry clients kept between requests, keyed by settings and credentials: a warm pull is
    then one manifest request on a kept-alive connection with a cached token, not a new TLS
    handshake, `/v2/` ping and token fetch. A few entries only; the oldest is dropped first. A
    dropped client is closed once the last pull using it is done (concurrent pulls share one)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._clients: dict[tuple[object, ...], RegistryClient] = {}
        self._users: dict[int, int] = {}
        self._retired: dict[int, RegistryClient] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def get(self, auth: Sequence[RegistryAuth], config: RegistryConfig | None) -> Iterator[RegistryClient]:
        settings = config or registry_config()
        key = (settings, tuple(sorted(auth, key=lambda a: a.host)))
        with self._lock:
            client = self._clients.pop(key, None)
            if client is None:
                credentials = {a.host: Credentials(a.username, a.password, a.identity_token) for a in auth}
                client = RegistryClient(settings, credentials=credentials)
            self._clients[key] = client  # most recently used last
            self._users[id(client)] = self._users.get(id(client), 0) + 1
            closing = [self._retire(self._clients.pop(k)) for k in list(self._clients)[:-self.size]]
        for stale in closing:
            if stale is not None:
                stale.close()
        try:
            yield client
        except RegistryError:
            # a client remembers unreachable endpoints and challenges: after a failure start afresh
            with self._lock:
                if self._clients.get(key) is client:
                    del self._clients[key]
                    self._retired[id(client)] = client
            raise
        finally:
            with self._lock:
                left = self._users.pop(id(client)) - 1
                if left:
                    self._users[id(client)] = left
                done = None if left else self._retired.pop(id(client), None)
            if done is not None:
                done.close()

    def _retire(self, client: RegistryClient) -> RegistryClient | None:
        """Under the lock: the client to close now, or None if a pull still uses it."""
        if self._users.get(id(client)):
            self._retired[id(client)] = client
            return None
        return client

    def close(self) -> None:
        """Close every kept client nobody uses (engine shutdown, tests)."""
        with self._lock:
            closing = [self._retire(c) for c in self._clients.values()]
            self._clients = {}
        for client in closing:
            if client is not None:
                client.close()


CLIENTS = _Clients()


def open_client(auth: Sequence[RegistryAuth], config: RegistryConfig | None = None,
                ) -> contextlib.AbstractContextManager[RegistryClient]:
    return CLIENTS.get(auth, config)


class _InFlight:
    """Blobs some pull of this engine is fetching right now, so that ten images sharing a base
    layer, pulled at once, download it once: a second pull waits for the first one's outcome."""

    def __init__(self) -> None:
        self._claims: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def claim(self, digest: str, present: Callable[[], bool]) -> threading.Event | None:
        """None if the caller must fetch `digest` (it holds the claim until `release`), else the
        event another fetch sets when done; re-check presence after waiting on it."""
        with self._lock:
            ongoing = self._claims.get(digest)
            if ongoing is not None:
                return ongoing
            if present():
                return threading.Event()  # already there: an event that needs no waiting
            self._claims[digest] = threading.Event()
            return None

    def release(self, digest: str) -> None:
        with self._lock:
            event = self._claims.pop(digest, None)
        if event is not None:
            event.set()


IN_FLIGHT = _InFlight()


class StoreSink:
    """`BlobSink` over the store's blob directory. `has` claims a missing blob for this pull
    (others wait for it); `release_claims` must run when the pull ends, however it ends."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.claims: set[str] = set()

    def has(self, digest: str) -> bool:
        path = self.store.blob_path(digest)
        while True:
            waiting = IN_FLIGHT.claim(digest, path.is_file)
            if waiting is None:
                self.claims.add(digest)
                return False
            if waiting.is_set() or path.is_file() or self.claims:
                # a pull that holds claims never waits (two pulls waiting on each other's claims
                # would deadlock): it fetches a copy instead, and both renames give the same file
                return path.is_file()
            waiting.wait()  # another pull fetches it; if that failed, claim it ourselves

    def release_claims(self) -> None:
        for digest in self.claims:
            IN_FLIGHT.release(digest)
        self.claims.clear()

    def read(self, digest: str) -> bytes:
        return self.store.blob_path(digest).read_bytes()

    def open_writer(self, digest: str, size: int, media_type: str) -> BlobFile:
        return BlobFile(self.store.blob_path(digest), lambda: self._done(digest))

    def _done(self, digest: str) -> None:
        """Committed or aborted: whoever waits for it may look again (and fetch it if aborted)."""
        if digest in self.claims:
            self.claims.discard(digest)
            IN_FLIGHT.release(digest)


class StoreSource:
    """`BlobSource` for push: the store's blobs, as they were imported or pulled."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store

    @contextlib.contextmanager
    def open(self, digest: str) -> Iterator[IO[bytes]]:
        try:
            with open(self.store.blob_path(digest), "rb") as blob:
                yield blob
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is missing from the store; re-import or re-pull the "
                           "image") from exc


def pull_image(store: ImageStore, ref_text: str, *, platform: str | None = None,
               auth: Sequence[RegistryAuth] = (), report: Report | None = None,
               config: RegistryConfig | None = None) -> Image:
    """Pull `ref_text` into the store and record it under that reference; its layers are then
    unpacked in the background (`unpacking.py`), and by whatever needs them first."""
    ref = Reference.parse(ref_text)
    wanted = Platform.parse(platform) if platform else None
    sink = StoreSink(store)

    def progress(event: BlobProgress) -> None:
        if report is not None:
            state = TransferState(event.state.value)
            report(TransferEvent(layer=event.digest, state=state, done=event.done, total=event.total))

    ok = False
    try:
        with store.import_lock(), open_client(auth, config) as client:
            pulled = pull(client, ref, sink, platform=wanted, progress=progress)
            layers = tuple(LayerRecord(digest=layer.digest, diff_id=layer.diff_id, size=layer.size,
                                       media_type=layer.media_type) for layer in pulled.layers)
            resolved = pulled.resolved
            manifest = (resolved.manifest_raw, resolved.manifest.media_type or OCI_MANIFEST)
            image = store.record_pull(pulled.config_raw, layers, ref, resolved.digest, manifest)
        ok = True
    finally:
        sink.release_claims()
        if not ok:
            store.collect_garbage_if_idle()
    BACKGROUND.submit(store.paths.root, image.id)
    return image


def resume_unpacks(store: ImageStore) -> int:
    """At engine start: pulled images whose layers are still packed (the engine stopped or died
    before its background unpack finished) are queued again; returns how many."""
    try:
        images = store.list()
    except (StackupError, OSError, ValueError):  # a damaged store must not keep the engine down
        return 0
    pending = [image.id for image in images
               if not all(store.has_layer(list(image.diff_ids[:i + 1])) for i in range(len(image.diff_ids)))]
    for image_id in pending:
        BACKGROUND.submit(store.paths.root, image_id)
    return len(pending)


def manifest_for(store: ImageStore, image: Image) -> bytes:
    """An OCI manifest for a stored image: its config blob and layer blobs as stored."""
    layers = [{"mediaType": layer.media_type, "digest": layer.digest,
               "size": store.blob_path(layer.digest).stat().st_size} for layer in image.layers]
    config_size = store.blob_path(image.id).stat().st_size
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": image.id, "size": config_size},
                "layers": layers}
    return json.dumps(manifest, separators=(",", ":")).encode()


def push_stored(store: ImageStore, ref_text: str, *, auth: Sequence[RegistryAuth] = (),
                report: Report | None = None, config: RegistryConfig | None = None) -> str:
    """Push the image `ref_text` names to its registry; returns the manifest digest. A pulled
    image goes with the manifest it was pulled with, so its digest stays the same; others get an
    OCI manifest of their blobs as stored."""
    ref = Reference.parse(ref_text)
    image = store.get(ref_text)
    if ref.digest and not ref.tag:
        raise RuntimeFailure(f"{ref.familiar}: push needs a tag, not only a digest")

    def progress(event: BlobProgress) -> None:
        if report is not None:
            state = TransferState.UPLOADING if event.state is BlobState.DOWNLOADING else TransferState(
                event.state.value)
            report(TransferEvent(layer=event.digest, state=state, done=event.done, total=event.total))

    mounts = [r for r in (Reference.parse(name) for name in image.refs)
              if r.domain == ref.domain and r.path != ref.path]
    with store.import_lock(), open_client(auth, config) as client:
        raw, media_type = store.pulled_manifest(image.id) or (manifest_for(store, image), OCI_MANIFEST)
        return push_image(client, ref, raw, StoreSource(store), media_type=media_type,
                          mount_from=mounts, progress=progress)
