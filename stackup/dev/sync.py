"""Host paths -> the service's containers, in one request per container.

Native engine (`runtime.base.TreeSync`): the batch is one tar relative to `/` (files, symlinks,
added directories walked with the rule's ignores applied, OCI whiteouts for paths gone from the
host) that the engine applies through the container's mounted root: `/proc/<pid>/root`, the
merged overlay as the process sees it, volumes and bind mounts included; a stopped container's
overlay is mounted for the call under its lock, so changes made while it is stopped are there
when it starts. Why the engine and not a write from here, though the CLI is root on the same
machine: the safe resolution of paths inside a container root (`engine/containers/files.py`)
and the container's lock live there, the client may only speak the wire protocol (import
contracts), and an engine reached over ssh or TLS works the same. The price is one request on a
kept-alive Unix socket, a millisecond or two (`bench/bench_watch.py` measures the whole path).

Other backends (`--runtime docker`): writes go through `copy_to` (a tar into `/`), deletes
through an `rm -rf` exec, as Compose does; a stopped container gets the writes and keeps its
deletes queued until the next batch finds it running.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from stackup.dev.rules import RuleMatcher
from stackup.errors import RuntimeFailure
from stackup.runtime.base import Backend, ContainerInfo, ContainerState, ExecSpec, TreeSync

WHITEOUT = ".wh."


@dataclass
class Batch:
    """What to do in the containers: container path -> host path to copy, and paths to delete."""

    writes: dict[str, Path] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.writes) + len(self.deletes)


def _walk(directory: Path, matcher: RuleMatcher) -> Iterator[Path]:
    """Everything under an added directory that the rule counts (ignored subtrees not entered)."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if matcher.prunes(path):
                continue
            if matcher.decide(path).counts:
                yield path
            yield from _walk(path, matcher)
        elif matcher.decide(path).counts:
            yield path


def plan_batch(paths: dict[Path, RuleMatcher], added: set[Path]) -> Batch:
    """Stat each path now: present -> write (an added directory with what is under it), gone ->
    delete (dropping deletes under a deleted directory, which the directory's covers)."""
    batch = Batch()
    for path, matcher in sorted(paths.items()):
        target = matcher.container_path(path)
        if target is None:
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            batch.deletes.add(target)
            continue
        if stat.S_ISDIR(info.st_mode):
            if path in added:
                batch.writes[target] = path
                for inner in _walk(path, matcher):
                    batch.writes[matcher.container_path(inner) or ""] = inner
            continue
        batch.writes[target] = path
    batch.deletes = {d for d in batch.deletes if not any(p in batch.deletes for p in _parents(d))}
    return batch


def _parents(path: str) -> list[str]:
    return [str(p) for p in PurePosixPath(path).parents][:-1]


def archive(batch: Batch) -> bytes:
    """The batch as a tar relative to `/`: whiteouts first, then entries in path order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for target in sorted(batch.deletes):
            pure = PurePosixPath(target)
            info = tarfile.TarInfo(str(pure.parent / (WHITEOUT + pure.name)).lstrip("/"))
            tar.addfile(info)
        for target, host in sorted(batch.writes.items()):
            _add(tar, target.lstrip("/"), host)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, host: Path) -> None:
    try:
        st = host.lstat()
        info = tarfile.TarInfo(name)
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(host)
            tar.addfile(info)
        elif stat.S_ISREG(st.st_mode):
            with host.open("rb") as source:
                data = source.read()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    except FileNotFoundError:
        return  # deleted between the stat and the read: the next batch deletes it


class Syncer:
    """Applies batches to containers through the backend's fastest way."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.queued_deletes: dict[str, set[str]] = {}

    def apply(self, containers: list[ContainerInfo], batch: Batch) -> tuple[int, int]:
        """(files written, paths deleted) in the first container (replicas get the same)."""
        if not len(batch):
            return 0, 0
        files = sum(1 for host in batch.writes.values() if not host.is_dir())
        counts: tuple[int, int] | None = None
        if isinstance(self.backend, TreeSync):
            body = archive(batch)
            for info in containers:
                _, deleted = self.backend.sync_tree(info.id, "/", body)
                counts = counts or (files, deleted)
            return counts or (0, 0)
        for info in containers:
            self._portable(info, batch)
        return files, len(batch.deletes)

    def _portable(self, info: ContainerInfo, batch: Batch) -> None:
        if batch.writes:
            self.backend.copy_to(info.id, "/", io.BytesIO(archive(Batch(writes=batch.writes))))
        deletes = self.queued_deletes.pop(info.id, set()) | batch.deletes
        if not deletes:
            return
        if info.state is not ContainerState.RUNNING:
            self.queued_deletes[info.id] = deletes
            return
        result = self.backend.exec(info.id, ExecSpec(("rm", "-rf", "--", *sorted(deletes))))
        if result.exit_code != 0:
            output = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise RuntimeFailure(
                f"{info.name}: could not delete {', '.join(sorted(deletes))}: `rm -rf` exited with "
                f"{result.exit_code} ({output}); over this runtime deletes need an `rm` in the image"
            )
