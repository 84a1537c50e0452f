"""Removing container directories off the request path: a rename now, the delete in the background.

Why: deleting a container's directory (its upper and work dirs, logs, sockets) is many unlinks,
and on a busy disk it was the largest single step of `remove`. A rename within the same
filesystem is one call, after which the container's path is free; one background thread deletes
what was renamed. Whatever an engine that died left in the trash is deleted by the next one
(`Trash.start`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import threading
from pathlib import Path


class Trash:
    """A directory of things to delete, and the thread that deletes them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def discard(self, path: Path) -> None:
        """Make `path` disappear now and delete it soon; a missing path is fine."""
        target = self.directory / f"{path.name}-{secrets.token_hex(4)}"
        with self._lock:  # the deleting thread removes the empty trash directory under it
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(path, target)
            except FileNotFoundError:
                return
            except OSError:  # another filesystem, or anything odd: delete in place, as before
                shutil.rmtree(path, ignore_errors=True)
                return
            self._queue.put(target)
        self.start()

    def drain(self) -> None:
        """Delete what is left now (engine shutdown), and the trash directory with it: a stopped
        engine leaves no container directory behind."""
        with self._lock:
            while True:
                try:
                    shutil.rmtree(self._queue.get_nowait(), ignore_errors=True)
                except queue.Empty:
                    break
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self.directory):
                    shutil.rmtree(entry.path, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.directory.rmdir()

    def start(self) -> None:
        """Start the deleting thread (once), which first empties what a previous engine left."""
        with self._lock:
            if self._thread is not None:
                return
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self.directory):
                    self._queue.put(Path(entry.path))
            self._thread = threading.Thread(target=self._run, name="trash", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            shutil.rmtree(self._queue.get(), ignore_errors=True)
            with self._lock:
                if self._queue.empty():  # nothing pending: no `.trash` left lying around
                    with contextlib.suppress(OSError):
                        self.directory.rmdir()
