"""Applying a batch of file changes to a directory of a container (`stackup watch`'s sync).

The batch is a tar stream relative to the target directory: regular files, directories and
symlinks to write, and OCI whiteouts (`dir/.wh.NAME`) for `dir/NAME` to delete, as an image
layer spells a deletion. The caller hands us the directory that stands for the container's `/`
(`copying.ContainerFiles.root_of`: `/proc/<pid>/root` for a running container, so writes go
through the mounted merged overlay, and volumes or bind mounts under the target receive them
exactly as the container sees them; a stopped container's overlay mounted for the call).

Unlike `docker cp`, what is written takes the ownership and mode the target directory implies:
a new file or directory belongs to the owner of the directory it lands in (an app running as
`USER node` in a `/app` owned by node can still rewrite its files), a file that already existed
keeps its owner, and modes keep the host's permission bits (the executable bit matters) minus
group/other write unless the directory grants those. A file is written under a temporary name
and renamed over the old one, so a process in the container never reads half of it.

Paths are resolved by `files.RootDir` (no escape through symlinks); the last component is never
followed.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tarfile
from dataclasses import dataclass

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.engine.containers import files

WHITEOUT = ".wh."
_DIR = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class SyncCounts:
    written: int
    deleted: int


def implied_mode(host_mode: int, dir_mode: int) -> int:
    """The host's permission bits, group/other write only where the directory grants them."""
    return host_mode & 0o777 & (0o755 | (dir_mode & 0o022))


class _Dirs:
    """Directory descriptors of one batch by path (a burst writes many files into few dirs);
    missing directories are made with the owner and mode of the one they are made in."""

    def __init__(self, root: files.RootDir) -> None:
        self.root = root
        self.fds: dict[str, int] = {}

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def get(self, path: str, hops: int = 0) -> int:
        if hops > files.MAX_SYMLINKS:
            raise RuntimeFailure(f"too many levels of symbolic links in the container: {path}")
        key = "/".join(files.parts(path))
        if key in self.fds:
            return self.fds[key]
        try:
            fd = self.root.open_dir(key)
        except NotFound:
            if not key:
                raise
            head, _, name = key.rpartition("/")
            parent = self.get(head, hops)
            info = os.fstat(parent)
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                link = os.readlink(name, dir_fd=parent)  # a dangling symlink: make its target
                fd = self.get(_normal(link if link.startswith("/") else f"{head}/{link}"), hops + 1)
                self.fds[key] = os.dup(fd)
                return self.fds[key]
            made = os.open(name, os.O_RDONLY | _DIR, dir_fd=parent)
            try:
                os.fchown(made, info.st_uid, info.st_gid)
                os.fchmod(made, stat.S_IMODE(info.st_mode))
            finally:
                os.close(made)
            fd = self.root.open_dir(key)
        self.fds[key] = fd
        return fd

    def forget(self, prefix: str) -> None:
        """Drop cached descriptors at and under `prefix` (it was deleted or replaced)."""
        key = "/".join(files.parts(prefix))
        for path in [p for p in self.fds if p == key or p.startswith(key + "/")]:
            os.close(self.fds.pop(path))


def _normal(path: str) -> str:
    """`path` with `..` applied, stopping at the root (as the kernel resolves it in a chroot)."""
    out: list[str] = []
    for part in files.parts(path):
        if part != "..":
            out.append(part)
        elif out:
            out.pop()
    return "/".join(out)


def _delete(parent: int, name: str) -> bool:
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)
    return True


def _write_file(parent: int, name: str, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
    directory = os.fstat(parent)
    try:
        old: os.stat_result | None = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        old = None
    if old is not None and stat.S_ISDIR(old.st_mode):
        shutil.rmtree(name, dir_fd=parent)
        old = None
    owner = (old.st_uid, old.st_gid) if old is not None and stat.S_ISREG(old.st_mode) else (
        directory.st_uid, directory.st_gid)
    temporary = f".stackup-sync-{secrets.token_hex(4)}-{name}"[:255]
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=parent)  # fmt: skip
    try:
        source = archive.extractfile(member)
        while source is not None and (chunk := source.read(_CHUNK)):
            os.write(fd, chunk)
        os.fchown(fd, *owner)
        os.fchmod(fd, implied_mode(member.mode, directory.st_mode))
        os.utime(fd, (member.mtime, member.mtime))
    finally:
        os.close(fd)
    try:
        os.rename(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
    except OSError as exc:
        os.unlink(temporary, dir_fd=parent)
        if exc.errno != errno.EBUSY:
            raise
        _write_in_place(parent, name, member, archive)  # a file bind-mounted on its own


def _write_in_place(parent: int, name: str, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        source = archive.extractfile(member)
        while source is not None and (chunk := source.read(_CHUNK)):
            os.write(fd, chunk)
    finally:
        os.close(fd)


def _write_symlink(parent: int, name: str, member: tarfile.TarInfo) -> None:
    directory = os.fstat(parent)
    _delete(parent, name)
    os.symlink(member.linkname, name, dir_fd=parent)
    os.chown(name, directory.st_uid, directory.st_gid, dir_fd=parent, follow_symlinks=False)


def apply(root: files.RootDir, directory: str, archive: tarfile.TarFile) -> SyncCounts:
    """Apply the changes in `archive` under `directory` of `root` (made if missing)."""
    base = "/".join(files.parts(directory))
    dirs = _Dirs(root)
    written = deleted = 0
    try:
        dirs.get(base)
        for member in archive:
            relative = files.member_path(member.name)
            if not relative:
                continue
            head, _, name = f"{base}/{relative}".strip("/").rpartition("/")
            if name.startswith(WHITEOUT):
                target = name[len(WHITEOUT):]
                try:
                    parent = dirs.get(head) if head in dirs.fds else root.open_dir(head)
                except NotFound:
                    continue  # its directory is gone already
                try:
                    dirs.forget(f"{head}/{target}")
                    deleted += _delete(parent, target)
                finally:
                    if head not in dirs.fds:
                        os.close(parent)
                continue
            if member.isdir():
                dirs.get(f"{head}/{name}")
                continue
            parent = dirs.get(head)
            if member.isreg():
                _write_file(parent, name, member, archive)
            elif member.issym():
                _write_symlink(parent, name, member)
            else:
                raise RuntimeFailure(f"cannot sync {member.name!r}: only files, directories and symlinks")
            dirs.forget(f"{head}/{name}")
            written += 1
    finally:
        dirs.close()
    return SyncCounts(written, deleted)
