"""Registry pulls and pushes for the engine's image store, over `stackup.registry`.

A pull streams verified blobs straight into the store's blob directory (`StoreSink`: a private
temporary file renamed to its digest only after the client verified size and digest), unpacks
each layer as soon as its blob is committed, while the others still download (every DiffID is
known from the config before any layer is fetched), and records the image only once every
layer is unpacked and its DiffID checked. The store's GC lock is held shared for the whole pull,
so garbage collection never deletes a committed blob no record references yet. A failed pull
records nothing, and what it stored is collected at once (unless another import is running, in
which case the next collection takes it): a container can never start from a partial image.

Credentials arrive with the request (`RegistryAuth`, resolved by the client as the invoking
user); the engine never reads root's Docker config. Registry settings (insecure registries,
mirrors) come from `/etc/stackup/daemon.json`, else `/etc/docker/daemon.json`, as Docker reads them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from stackup.errors import NotFound, RuntimeFailure
from stackup.registry.auth import Credentials
from stackup.registry.blobs import BlobProgress, BlobState
from stackup.registry.client import RegistryClient
from stackup.registry.config import RegistryConfig
from stackup.registry.errors import RegistryError
from stackup.registry.media import OCI_CONFIG, OCI_MANIFEST
from stackup.registry.platform import Platform
from stackup.registry.pull import Layer, pull
from stackup.registry.push import push_image
from stackup.registry.reference import Reference
from stackup.runtime.engine.images.layers import chain_ids
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.images import Image, LayerRecord, RegistryAuth, TransferEvent, TransferState

DAEMON_JSON = (Path("/etc/stackup/daemon.json"), Path("/etc/docker/daemon.json"))
_NO_DOCKER_CONFIG = Path("/nonexistent/stackup-engine/config.json")
_CHUNK = 1 << 20
_UNPACKERS = 2

Report = Callable[[TransferEvent], None]


def registry_config(candidates: Sequence[Path] = DAEMON_JSON) -> RegistryConfig:
    """The first daemon.json that exists decides; credentials never come from root's HOME."""
    for path in candidates:
        if path.is_file():
            return RegistryConfig.from_daemon_json(path, docker_config=_NO_DOCKER_CONFIG)
    return RegistryConfig(docker_config=_NO_DOCKER_CONFIG)


class _Clients:
    """Registry clients kept between requests, keyed by settings and credentials: a warm pull is
    then one manifest request on a kept-alive connection with a cached token, not a new TLS
    handshake, `/v2/` ping and token fetch. A few entries only; the oldest is closed first."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._clients: dict[tuple[object, ...], RegistryClient] = {}
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
            evicted = list(self._clients)[:-self.size]
            old = [self._clients.pop(k) for k in evicted]
        for stale in old:
            stale.close()
        try:
            yield client
        except RegistryError:
            # a client remembers unreachable endpoints and challenges: after a failure start afresh
            with self._lock:
                if self._clients.get(key) is client:
                    del self._clients[key]
            raise


CLIENTS = _Clients()


def open_client(auth: Sequence[RegistryAuth], config: RegistryConfig | None = None,
                ) -> contextlib.AbstractContextManager[RegistryClient]:
    return CLIENTS.get(auth, config)


class _BlobFile:
    """A blob being written: a private temporary file that becomes the blob only on `commit`."""

    def __init__(self, target: Path, done: Callable[[], None]) -> None:
        self._target = target
        self._done = done
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-pull-")
        self._tmp = Path(name)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)

    def commit(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        os.replace(self._tmp, self._target)
        self._done()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)
        self._done()


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

    def open_writer(self, digest: str, size: int, media_type: str) -> _BlobFile:
        return _BlobFile(self.store.blob_path(digest), lambda: self._done(digest))

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


class _Unpacker:
    """Unpacks layers as their blobs arrive, on a small pool, in any order."""

    def __init__(self, store: ImageStore, layers: Sequence[Layer]) -> None:
        self.store = store
        digests = [layer.digest for layer in layers]
        diff_ids = [layer.diff_id for layer in layers]
        chains = chain_ids(diff_ids)
        self.layers = [(digest, chains[i - 1] if i else None, diff_ids[i])
                       for i, digest in enumerate(digests)]
        self.futures: dict[int, Future[LayerRecord]] = {}
        self.pool = ThreadPoolExecutor(_UNPACKERS, thread_name_prefix="stackupd-unpack")
        self._lock = threading.Lock()

    def blob_ready(self, digest: str) -> None:
        with self._lock:
            for index, (wanted, parent, diff_id) in enumerate(self.layers):
                if wanted == digest and index not in self.futures:
                    self.futures[index] = self.pool.submit(_add_layer, self.store, wanted, parent, diff_id)

    def finish(self) -> tuple[LayerRecord, ...]:
        for digest, _parent, _diff_id in self.layers:
            self.blob_ready(digest)
        try:
            return tuple(self.futures[i].result() for i in range(len(self.layers)))
        finally:
            self.pool.shutdown(wait=True)

    def cancel(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


_LAYER_LOCKS: dict[str, threading.Lock] = {}
_LAYER_LOCKS_GUARD = threading.Lock()


def _add_layer(store: ImageStore, digest: str, parent: str | None, diff_id: str) -> LayerRecord:
    """One unpack per layer at a time: concurrent pulls of images sharing it wait, then find it."""
    key = f"{parent} {diff_id}"
    with _LAYER_LOCKS_GUARD:
        lock = _LAYER_LOCKS.setdefault(key, threading.Lock())
    try:
        with lock:
            return store.unpack_layer(digest, parent, diff_id)
    finally:
        with _LAYER_LOCKS_GUARD:
            if not lock.locked():
                _LAYER_LOCKS.pop(key, None)


def pull_image(store: ImageStore, ref_text: str, *, platform: str | None = None,
               auth: Sequence[RegistryAuth] = (), report: Report | None = None,
               config: RegistryConfig | None = None) -> Image:
    """Pull `ref_text` into the store and record it under that reference."""
    ref = Reference.parse(ref_text)
    wanted = Platform.parse(platform) if platform else None
    sink = StoreSink(store)
    unpacker: _Unpacker | None = None

    def on_layers(layers: tuple[Layer, ...]) -> None:
        nonlocal unpacker
        unpacker = _Unpacker(store, layers)

    def progress(event: BlobProgress) -> None:
        if unpacker is not None and event.state in (BlobState.DONE, BlobState.EXISTS):
            unpacker.blob_ready(event.digest)
        if report is not None:
            state = TransferState(event.state.value)
            report(TransferEvent(layer=event.digest, state=state, done=event.done, total=event.total))

    ok = False
    try:
        with store.import_lock(), open_client(auth, config) as client:
            try:
                pulled = pull(client, ref, sink, platform=wanted, progress=progress, on_layers=on_layers)
                assert unpacker is not None
                layers = unpacker.finish()
            except BaseException:
                if unpacker is not None:
                    unpacker.cancel()
                raise
            image = store.record_pull(pulled.config_raw, layers, ref, pulled.resolved.digest)
        ok = True
        return image
    except RuntimeFailure as exc:
        if "DiffID" in str(exc) and ref.familiar not in str(exc):
            raise RuntimeFailure(f"{ref.familiar}: {exc}; the image in the registry is damaged: push it "
                                 "again") from exc
        raise
    finally:
        sink.release_claims()
        if not ok:
            store.collect_garbage_if_idle()


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
    """Push the image `ref_text` names to its registry; returns the manifest digest."""
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
        raw = manifest_for(store, image)
        return push_image(client, ref, raw, StoreSource(store), media_type=OCI_MANIFEST,
                          mount_from=mounts, progress=progress)
