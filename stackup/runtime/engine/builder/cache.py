"""The build cache: step key -> the layer that step made, persisted under the image store.

One JSON file per key in `images/buildcache/` (the store's garbage collection keeps every layer
an entry names, so removing images never breaks the cache, and pruning the cache never breaks an
image). An entry records the whole DiffID chain up to its layer, so a hit is only taken when that
exact chain is still unpacked: a parent rebuilt with different content since is a miss, not a
wrong layer. `layer` is None for a step that changed nothing (no layer, as Docker skips empty
ones). `last_used` orders `prune(keep_bytes=...)`, which drops the least recently used first.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.images import LayerRecord

DEFAULT_MAX_BYTES = 20 * 1024**3
MAX_BYTES_ENV = "STACKUP_BUILD_CACHE_MAX"


@dataclass(frozen=True)
class CacheEntry:
    key: str
    diff_ids: tuple[str, ...]
    layer: LayerRecord | None
    created: str
    last_used: float

    @property
    def size(self) -> int:
        return self.layer.size if self.layer is not None else 0


class BuildCache:
    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.dir = store.build_cache_dir
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.dir / f"{key.removeprefix('sha256:')}.json"

    def get(self, key: str, parent_diff_ids: list[str]) -> CacheEntry | None:
        """The entry for `key` if it applies on top of `parent_diff_ids` and its layer is there."""
        try:
            data = json.loads(self._path(key).read_bytes())
            entry = CacheEntry(
                key,
                tuple(data["diff_ids"]),
                LayerRecord.model_validate(data["layer"]) if data.get("layer") else None,
                str(data["created"]),
                float(data.get("last_used", 0)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        own = [entry.layer.diff_id] if entry.layer is not None else []
        if list(entry.diff_ids) != [*parent_diff_ids, *own] or not self.store.has_layer(list(entry.diff_ids)):
            return None
        if time.time() - entry.last_used > 60:  # bump the LRU clock without a write per hit
            self._write(entry.key, entry.diff_ids, entry.layer, entry.created)
        return entry

    def put(self, key: str, diff_ids: list[str], layer: LayerRecord | None, created: str) -> None:
        self._write(key, tuple(diff_ids), layer, created)

    def _write(self, key: str, diff_ids: tuple[str, ...], layer: LayerRecord | None, created: str) -> None:
        doc = {
            "diff_ids": list(diff_ids),
            "layer": layer.model_dump() if layer else None,
            "created": created,
            "last_used": time.time(),
        }
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)

    def entries(self) -> list[tuple[Path, float, int]]:
        out = []
        for path in self.dir.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                data = json.loads(path.read_bytes())
                out.append(
                    (path, float(data.get("last_used", 0)), int((data.get("layer") or {}).get("size", 0)))
                )
        return out

    def usage(self) -> tuple[int, int]:
        """(entries, bytes of the layers they name)."""
        entries = self.entries()
        return len(entries), sum(size for _, _, size in entries)

    def prune(self, keep_bytes: int = 0) -> tuple[int, int]:
        """Drop entries, least recently used first, until their layers total at most `keep_bytes`;
        then collect the layers nothing names any more. Returns (entries removed, bytes)."""
        entries = sorted(self.entries(), key=lambda e: e[1])
        total = sum(size for _, _, size in entries)
        removed = reclaimed = 0
        for path, _, size in entries:
            if total <= keep_bytes and keep_bytes > 0:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
            reclaimed += size
        if removed:
            self.store.collect_garbage()
        return removed, reclaimed

    def enforce_limit(self) -> None:
        """Keep the cache under `$STACKUP_BUILD_CACHE_MAX` bytes (default 20 GiB) after a build."""
        try:
            limit = int(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_BYTES))
        except ValueError:
            limit = DEFAULT_MAX_BYTES
        if self.usage()[1] > limit:
            self.prune(keep_bytes=max(limit, 1))
