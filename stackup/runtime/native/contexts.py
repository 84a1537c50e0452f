"""A build context sent to a remote engine: packed here as a tar, unpacked there.

A local engine reads the context directory itself. A remote one (`tcp://`, `ssh://`) cannot see
it, so the client packs it, honouring `.dockerignore` (what the build could not read anyway
stays here: `node_modules`, `.git`), uploads it (`POST /build/contexts`) and names the engine's
path of it in the build request; the upload is removed when the build is over, success or not.
A Dockerfile outside the context is sent inline. Symlinks travel as symlinks; the engine refuses
any that leads out of the context, as it refuses one in a local context.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from stackup.build.ignore import IgnoreMatcher
from stackup.errors import UsageError
from stackup.runtime.wire.build import BuildRequest

if TYPE_CHECKING:
    from stackup.runtime.native.client import EngineClient

_ALWAYS = (".dockerignore",)


def _ignore(context: Path) -> IgnoreMatcher:
    try:
        lines = (context / ".dockerignore").read_text().splitlines()
    except FileNotFoundError:
        return IgnoreMatcher(())
    return IgnoreMatcher.from_lines(lines, source=str(context / ".dockerignore"))


def pack(context: Path, keep: tuple[str, ...] = ()) -> IO[bytes]:
    """The context as an uncompressed tar in a temporary file (rewound), `.dockerignore`
    applied; `keep` (the Dockerfile) and `.dockerignore` itself are always in it."""
    ignore = _ignore(context)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it after the upload
    try:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for here, dirs, files in os.walk(context):
                base = os.path.relpath(here, context)
                for name in sorted(dirs):
                    rel = name if base == "." else f"{base}/{name}"
                    if ignore.matches(rel):
                        if not ignore.has_exclusions:
                            dirs.remove(name)  # nothing under it can be included again
                        continue  # a file re-included below it brings its parents along
                    tar.add(os.path.join(here, name), arcname=rel, recursive=False)
                for name in sorted(files):
                    rel = name if base == "." else f"{base}/{name}"
                    if ignore.matches(rel) and rel not in (*_ALWAYS, *keep):
                        continue
                    tar.add(os.path.join(here, name), arcname=rel, recursive=False)
        spool.seek(0)
    except OSError as exc:
        spool.close()
        raise UsageError(f"cannot pack the build context {context}: {exc}") from None
    return spool


@contextlib.contextmanager
def uploaded(client: EngineClient, request: BuildRequest) -> Iterator[BuildRequest]:
    """`request` with its context replaced by an upload to the engine, removed afterwards."""
    context = Path(request.context)
    if not context.is_dir():
        raise UsageError(f"build context {context} is not a directory")
    update: dict[str, object] = {}
    dockerfile = Path(request.dockerfile)
    dockerfile = dockerfile if dockerfile.is_absolute() else context / dockerfile
    keep: tuple[str, ...] = ()
    if request.dockerfile_inline is None:
        rel = os.path.relpath(dockerfile, context)
        if rel.startswith(".."):
            try:
                update["dockerfile_inline"] = dockerfile.read_text()
            except OSError as exc:
                raise UsageError(f"cannot read the Dockerfile {dockerfile}: {exc.strerror or exc}") from None
        else:
            update["dockerfile"] = rel
            keep = (rel,)
    with pack(context, keep) as archive:
        upload = client.upload_context(archive)
    try:
        yield request.model_copy(update={**update, "context": upload.path})
    finally:
        with contextlib.suppress(Exception):
            client.remove_context(upload.id)
