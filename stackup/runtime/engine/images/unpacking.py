"""Layers are unpacked after a pull, not during it: a pull ends when its blobs are verified.

Why: unpacking is most of a cold pull's time (a 300 MB image: ~0.7 s to download and verify its
100 MB of blobs on loopback, 1-4 s more to gunzip and write 300 MB of files on this 2-core machine
depending on load), and `skopeo copy` to a directory, which the pull target is measured against,
stores blobs only. So a pull records the image once every blob verified (the config's DiffIDs are
known, the layers are not unpacked yet), returns, and the layers are unpacked in the background
(`Background`: a low-priority child process).
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
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

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
    """Unpacks pulled images after their pulls returned, in a child process at low priority.

    Why a process: gunzipping holds the GIL (ISA-L's inflate does not release it; measured: a
    thread asking for the GIL while another gunzips waits up to ~5 ms each time), so an unpack in
    an engine thread made every other request slow meanwhile (a warm pull of another image: 0.3 s
    instead of 0.06 s). A child (`nice` 10) runs the images queued so far in one go, one child at
    a time; `wait` lets a container start that needs one of them wait for it (at normal priority
    from then on) rather than unpack the same layers again, and then unpack whatever is still
    missing (if the child failed); an image only queued is left to the caller."""

    def __init__(self) -> None:
        self._queue: list[tuple[Path, str]] = []
        self._running: set[str] = set()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._urgent = False

    def submit(self, root: Path, image_id: str) -> None:
        with self._cond:
            self._queue.append((root, image_id))
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._drain, name="stackupd-unpack", daemon=True)
                self._worker.start()

    def _drain(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._worker = None
                    self._cond.notify_all()
                    return
                batch, self._queue = self._queue, []
                self._running = {image_id for _root, image_id in batch}
            try:
                by_root: dict[Path, list[str]] = {}
                for root, image_id in batch:
                    by_root.setdefault(root, []).append(image_id)
                for root, ids in by_root.items():
                    self._run(root, ids)
            finally:
                with self._cond:
                    self._running = set()
                    self._cond.notify_all()

    def _run(self, root: Path, image_ids: list[str]) -> None:
        nice = shutil.which("nice")  # coreutils: the niceness is set before the child runs
        argv = [*((nice, "-n", "10") if nice else ()), sys.executable, "-m",
                "stackup.runtime.engine.images.unpackchild", str(root), *image_ids]
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        except OSError as exc:
            log.warning("cannot start the background unpack of %s: %s", ", ".join(image_ids), exc)
            return
        with self._cond:
            self._child = child
            if self._urgent:
                _hurry(child)
        try:
            _, err = child.communicate()
        finally:
            with self._cond:
                self._child, self._urgent = None, False
        if child.returncode != 0:  # a container that needs the layers unpacks them and says why
            log.warning("background unpack of %s failed: %s", ", ".join(image_ids),
                        err.decode(errors="replace").strip()[-500:])

    def wait(self, image_id: str, timeout: float | None = None) -> None:
        """Return once no child is unpacking `image_id`; if it is only queued, it leaves the queue
        (the caller, who needs it now, unpacks it rather than wait for the images before it)."""
        with self._cond:
            self._queue = [(root, queued) for root, queued in self._queue if queued != image_id]
            if image_id in self._running:  # someone waits for it now: no longer background work
                self._urgent = True
                if self._child is not None:
                    _hurry(self._child)
            self._cond.wait_for(lambda: image_id not in self._running, timeout)

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted unpack finished (tests); True if so."""
        with self._cond:
            return self._cond.wait_for(lambda: self._worker is None, timeout)


def _hurry(child: subprocess.Popen[bytes]) -> None:
    """Back to normal priority (the engine runs as root, so it may lower a niceness)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, child.pid, 0)


BACKGROUND = Background()
