"""COPY and ADD into the merged view of a step's overlay (its upper dir becomes the layer).

Writing into the merged view rather than the upper dir means the base's symlinks and existing
directories resolve as they would in a container: the destination is resolved inside the root
(an absolute symlink is re-rooted, `..` stops at `/`), so nothing is ever written outside it.

Docker's rules: a relative destination is under the WORKDIR; a destination ending in `/`, or
several sources, or an existing directory, is a directory that receives each source (a directory
source contributes its contents, not itself); files are owned by 0:0 unless `--chown`
(`user[:group]`, names read from the image's own /etc/passwd and /etc/group; a numeric user alone
means the same group number); `--chmod` (octal) replaces the mode of what is copied; mtimes are
kept. `--parents` keeps each source's path below the context root. `--link` gives the same result
here (the layer is independent of the base anyway). ADD extracts a local tar archive (plain, gzip,
bzip2 or xz) into the destination directory instead of copying it, unless `--unpack=false`.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stackup.build.chmod import ModeChange, ModeError, parse_chmod
from stackup.build.context import BuildContext, ContextError
from stackup.build.dockerfile.instructions import Add, Copy, CopyBase
from stackup.build.ignore import IgnoreMatcher
from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers.config import resolve_user, rootfs_path
from stackup.runtime.engine.images.layers import unpack_layer


class CopyError(RuntimeFailure):
    """A COPY/ADD source or option the builder cannot honour (the executor locates it)."""


@dataclass(frozen=True)
class Item:
    """One thing to copy: host path, kind, and its path below the source (`""`: the source)."""

    host: str
    inner: str


@dataclass(frozen=True)
class Source:
    """What a source names: its host path, its display name, and whether it is a directory."""

    host: str
    rel: str
    is_dir: bool


class ContextSource:
    """Sources read from the build context (globs, .dockerignore, `--exclude`)."""

    def __init__(self, context: BuildContext) -> None:
        self.context = context

    def sources(self, pattern: str) -> list[Source]:
        try:
            rels = self.context.resolve(pattern)
        except ContextError as exc:
            raise CopyError(str(exc)) from None
        out = []
        for rel in rels:
            host = str(self.context.root) if rel == "." else os.path.join(self.context.root, rel)
            out.append(Source(host, rel, os.path.isdir(host) and not os.path.islink(host)))
        return out

    def items(self, source: Source, excludes: tuple[str, ...]) -> Iterator[Item]:
        try:
            for entry in self.context.entries(source.rel, excludes):
                inner = (
                    ""
                    if entry.path == source.rel
                    else (entry.path if source.rel == "." else entry.path[len(source.rel) + 1 :])
                )
                host = (
                    str(self.context.root)
                    if entry.path == "."
                    else os.path.join(self.context.root, entry.path)
                )
                yield Item(host, inner)
        except ContextError as exc:
            raise CopyError(str(exc)) from None


class RootfsSource:
    """Sources read from another stage's or an image's filesystem (`COPY --from`)."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs

    def sources(self, pattern: str) -> list[Source]:
        parts = [p for p in pattern.split("/") if p not in ("", ".")]
        matches = [""]
        for part in parts:
            following: list[str] = []
            for base in matches:
                host = rootfs_path(self.rootfs, base or "/")
                if any(c in part for c in "*?["):
                    try:
                        names = sorted(os.listdir(host))
                    except OSError:
                        continue
                    from fnmatch import fnmatchcase

                    following += [f"{base}/{n}" for n in names if fnmatchcase(n, part)]
                else:
                    following.append(f"{base}/{part}")
            matches = following
        out = []
        for rel in matches:
            host = rootfs_path(self.rootfs, rel or "/")
            if not os.path.lexists(host):
                continue
            out.append(Source(str(host), rel.lstrip("/") or ".", host.is_dir() and not host.is_symlink()))
        if not out:
            raise CopyError(f"{pattern}: not found in the source stage or image")
        return out

    def items(self, source: Source, excludes: tuple[str, ...]) -> Iterator[Item]:
        exclude = IgnoreMatcher.from_lines(excludes, source="--exclude") if excludes else None
        yield Item(source.host, "")
        if not source.is_dir:
            return
        for dirpath, dirnames, filenames in os.walk(source.host):
            rel_dir = os.path.relpath(dirpath, source.host)
            for name in sorted(dirnames) + sorted(filenames):
                inner = name if rel_dir == "." else f"{rel_dir}/{name}"
                if exclude is not None and exclude.matches(inner):
                    continue
                yield Item(os.path.join(dirpath, name), inner)
            dirnames[:] = [
                d
                for d in sorted(dirnames)
                if not (exclude and exclude.matches(d if rel_dir == "." else f"{rel_dir}/{d}"))
            ]


def _owner(rootfs: Path, chown: str) -> tuple[int, int]:
    if not chown:
        return 0, 0
    user, _, group = chown.partition(":")
    if user.isdigit() and not group:
        return int(user), int(user)
    resolved = resolve_user(rootfs, chown)
    return resolved.uid, resolved.gid


def make_workdir(rootfs: Path, path: str, user: str) -> None:
    """WORKDIR: create `path` and its missing parents, owned by the stage's current USER (as
    BuildKit creates them for a non-root user); existing directories keep their owner."""
    owner = resolve_user(rootfs, user) if user else None
    parts = [p for p in path.split("/") if p]
    inside = "/"
    for part in parts:
        inside = posixpath.join(inside, part)
        host = rootfs_path(rootfs, inside)
        if host.is_dir():
            continue
        if os.path.lexists(host):
            raise CopyError(f"WORKDIR {path}: {inside} exists and is not a directory")
        host.mkdir(mode=0o755)
        if owner is not None:
            os.chown(host, owner.uid, owner.gid)


def _mode(chmod: str) -> ModeChange | None:
    if not chmod:
        return None
    try:
        return parse_chmod(chmod)
    except ModeError as exc:
        raise CopyError(f"--chmod={chmod}: {exc}") from None


class _Writer:
    """Writes items below one resolved destination inside `rootfs`."""

    def __init__(self, rootfs: Path, uid: int, gid: int, mode: ModeChange | None) -> None:
        self.rootfs, self.uid, self.gid, self.mode = rootfs, uid, gid, mode

    def ensure_dir(self, inside: str) -> Path:
        """mkdir -p inside the root, following existing symlinks re-rooted."""
        host = rootfs_path(self.rootfs, inside)
        if host.is_dir():
            return host
        parent = self.ensure_dir(posixpath.dirname(inside.rstrip("/")) or "/")
        target = parent / posixpath.basename(inside.rstrip("/"))
        if os.path.lexists(target) and not target.is_dir():
            target.unlink()
        target.mkdir(mode=0o755, exist_ok=True)
        os.chown(target, self.uid, self.gid)
        return target

    def put(self, src: str, inside: str) -> None:
        """Copy one entry (file, dir, symlink) from host `src` to `inside` (a path in the root)."""
        parent = self.ensure_dir(posixpath.dirname(inside) or "/")
        target = parent / posixpath.basename(inside)
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            if not target.is_dir() or target.is_symlink():
                if os.path.lexists(target):
                    target.unlink()
                target.mkdir()
            self._meta(target, st)
            return
        if os.path.lexists(target):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), target)
            os.lchown(target, self.uid, self.gid)
            return
        if not stat.S_ISREG(st.st_mode):
            raise CopyError(f"{src}: not a regular file, directory or symlink")
        shutil.copyfile(src, target, follow_symlinks=False)
        self._meta(target, st)

    def write(self, inside: str, data: bytes, mode: int = 0o644) -> None:
        parent = self.ensure_dir(posixpath.dirname(inside) or "/")
        target = parent / posixpath.basename(inside)
        if os.path.lexists(target):
            target.unlink()
        target.write_bytes(data)
        os.chown(target, self.uid, self.gid)
        os.chmod(target, self.mode(mode, False) if self.mode is not None else mode)

    def _meta(self, target: Path, st: os.stat_result) -> None:
        os.chown(target, self.uid, self.gid)
        mode = stat.S_IMODE(st.st_mode)
        os.chmod(target, self.mode(mode, stat.S_ISDIR(st.st_mode)) if self.mode is not None else mode)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy_step(
    rootfs: Path,
    instr: CopyBase,
    workdir: str,
    reader: ContextSource | RootfsSource,
    tmp: Path,
    *,
    previous: Path | None = None,
) -> None:
    """Perform one COPY/ADD into the mounted `rootfs`. `previous` is the stage's filesystem when
    `rootfs` starts empty (`COPY --link`): `--chown` names and whether the destination is an
    existing directory are looked up there."""
    seen = previous or rootfs
    dest = instr.dest if instr.dest.startswith("/") else posixpath.join(workdir or "/", instr.dest)
    uid, gid = _owner(seen, instr.chown)
    writer = _Writer(rootfs, uid, gid, _mode(instr.chmod))
    sources = [s for pattern in instr.sources for s in reader.sources(pattern)]
    count = len(sources) + len(instr.inline)
    dest_is_dir = instr.dest.endswith("/") or count > 1 or rootfs_path(seen, dest).is_dir()
    parents = isinstance(instr, Copy) and instr.parents
    for inline in instr.inline:
        writer.write(posixpath.join(dest, inline.name) if dest_is_dir else dest, inline.data.encode())
    unpack = isinstance(instr, Add) and instr.unpack is not False
    for source in sources:
        if unpack and not source.is_dir and _is_archive(source.host):
            _extract(source.host, writer, dest, tmp)
            continue
        if parents:
            base = posixpath.join(dest, source.rel) if source.rel != "." else dest
        elif source.is_dir:
            base = dest
        else:
            base = posixpath.join(dest, posixpath.basename(source.rel)) if dest_is_dir else dest
        for item in reader.items(source, instr.excludes):
            if item.inner == "" and source.is_dir:
                writer.ensure_dir(base)
                continue
            writer.put(item.host, posixpath.join(base, item.inner) if item.inner else base)


def _is_archive(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _extract(path: str, writer: _Writer, dest: str, tmp: Path) -> None:
    """Unpack a tar safely (no absolute names, `..` or link escapes) then copy it in: ADD keeps
    the archive's own owners and modes."""
    staging = Path(tempfile.mkdtemp(dir=tmp, prefix="add-"))
    try:
        with tarfile.open(path) as archive, tempfile.TemporaryFile(dir=tmp) as plain:
            with tarfile.open(fileobj=plain, mode="w|") as out:
                for member in archive:
                    out.addfile(member, archive.extractfile(member) if member.isreg() else None)
            plain.seek(0)
            unpack_layer(plain, staging)
        keep = _Writer(writer.rootfs, 0, 0, None)
        base = keep.ensure_dir(dest)
        for dirpath, dirnames, filenames in os.walk(staging):
            rel = os.path.relpath(dirpath, staging)
            for name in sorted(dirnames) + sorted(filenames):
                src = os.path.join(dirpath, name)
                inside = posixpath.join(dest, name if rel == "." else f"{rel}/{name}")
                st = os.lstat(src)
                keep.uid, keep.gid = st.st_uid, st.st_gid
                keep.put(src, inside)
        del base
    except (tarfile.TarError, OSError) as exc:
        raise CopyError(f"cannot extract {os.path.basename(path)}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
