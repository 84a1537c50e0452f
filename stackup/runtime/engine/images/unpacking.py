"""Layers are unpacked after a pull, not during it: a pull ends when its blobs are verified.

Why: unpacking is most of a cold pull's time (a 300 MB image: ~0.7 s to download and verify its
100 MB of blobs on loopback, 1-4 s more to gunzip and write 300 MB of files on this 2-core machine
depending on load), and `skopeo copy` to a directory, which the pull target is measured against,
stores blobs only. So a pull records the image once every blob verified (the config's DiffIDs are
known, the layers are not unpacked yet), returns, and the layers are unpacked in the background.
Whatever needs the files (`ImageStore.layer_dirs`: container start, `cp` on a stopped container,
snapshots, a build's FROM) unpacks what is still missing itself, or waits for the unpack in
progress (one lock per layer), and checks every DiffID: a layer that does not unpack to what its
config says refuses the container with the reason. A container therefore never starts from
layers that are incomplete or unverified; a crash in the middle leaves staging directories that
garbage collection removes, and the next start unpacks again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from stackup.errors import NotFound

log = logging.getLogger("stackupd.unpack")


class LayerLocks:
    """One lock per layer directory being unpacked: two unpacks of the same layer (a background
    one and a container start, or two pulls sharing a base) run one after the other, and the
    second finds the layer done. Entries are dropped when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


LOCKS = LayerLocks()


class Background:
    """Unpacks pulled images one at a time after their pulls returned. One worker: the machine's
    cores are better left to the pulls and containers in the foreground; a container start that
    needs a layer the worker has not reached unpacks it itself meanwhile."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending: set[Future[object]] = set()

    def submit(self, what: str, job: Callable[[], object]) -> Future[object]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="stackupd-unpack")
            future: Future[object] = self._pool.submit(self._run, what, job)
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    @staticmethod
    def _run(what: str, job: Callable[[], object]) -> object:
        try:
            return job()
        except NotFound:
            log.debug("%s was removed before its background unpack", what)
            raise
        except Exception as exc:  # the foreground unpack reports it where a container needs it
            log.warning("background unpack of %s failed: %s", what, exc)
            raise

    def _forget(self, future: Future[object]) -> None:
        with self._lock:
            self._pending.discard(future)

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted unpack finished (tests, engine shutdown); True if so."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            with contextlib.suppress(Exception):
                future.exception(timeout)
        return all(f.done() for f in pending)


BACKGROUND = Background()
