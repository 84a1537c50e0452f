"""The engine process's own files under a root: pid, lock and log.

Separate from `daemon.py` (which imports the HTTP client) so the engine itself can name these
files without loading httpx, and from `paths.py`, which belongs to the storage layout.
"""

from __future__ import annotations

from pathlib import Path

from stackup.runtime.wire.paths import EnginePaths


def log_path(paths: EnginePaths) -> Path:
    """Where a detached engine writes its stdout and stderr."""
    return paths.root / "engine.log"


def pid_path(paths: EnginePaths) -> Path:
    """The running engine's pid; written after the lock is taken, removed on a clean exit."""
    return paths.run / "stackupd.pid"


def lock_path(paths: EnginePaths) -> Path:
    """Held (flock) by the running engine for its whole life: one engine per root."""
    return paths.run / "stackupd.lock"
