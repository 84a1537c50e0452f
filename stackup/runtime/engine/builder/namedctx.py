"""Named local contexts (`additional_contexts`, BuildKit's `--build-context name=DIR`).

A directory given a name is read like the build context, through its own `.dockerignore`:
`COPY --from=name` copies from it, `RUN --mount=from=name` binds it read-only, and `FROM name`
starts a stage from its files (one layer, cached by the content digest of the directory, with
an empty image config as BuildKit gives it). `docker-image://REF` values need nothing here: the
build graph reads them as the image REF of the local store.
"""

from __future__ import annotations

import os

from stackup.build.context import BuildContext, StatCache
from stackup.build.dockerfile.instructions import Copy, From
from stackup.build.ignore import IgnoreMatcher
from stackup.errors import RuntimeFailure
from stackup.runtime.engine.builder import snapshot
from stackup.runtime.engine.builder.copystep import ContextSource, copy_step
from stackup.runtime.engine.builder.mounts import Workspace
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.images import LayerRecord
from stackup.runtime.wire.paths import EnginePaths


def local_contexts(contexts: dict[str, str], stat_cache: StatCache) -> dict[str, BuildContext]:
    """The local directories among `contexts` (absolute paths), by name."""
    out: dict[str, BuildContext] = {}
    for name, value in contexts.items():
        if not value.startswith("/"):
            continue
        if not os.path.isdir(value):
            raise RuntimeFailure(f'additional context "{name}": {value} is not a directory')
        out[name] = BuildContext(value, IgnoreMatcher.for_context(value), stat_cache)
    return out


def context_layer(
    paths: EnginePaths, store: ImageStore, context: BuildContext, from_: From
) -> LayerRecord | None:
    """The files of `context` as one layer over nothing (None: the directory is empty). Raises
    `CopyError` for what the context rules refuse (a symlink out of it, ...)."""
    whole = Copy(node=from_.node, sources=(".",), dest="/")
    with Workspace(paths, []) as ws:
        copy_step(ws.rootfs, whole, "/", ContextSource(context), ws.dir)
        ws.unmount()
        if snapshot.is_empty(ws.upper):
            return None
        tar = ws.dir / "layer.tar"
        snapshot.write_layer_tar(ws.upper, tar)
        return store.adopt_layer(tar, ws.upper, [])
