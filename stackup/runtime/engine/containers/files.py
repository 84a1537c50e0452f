"""Reading and writing files inside a container's root without ever leaving it.

Every path is walked one component at a time from a directory file descriptor of the root
(`openat` with `O_NOFOLLOW`), never by handing a joined string to the kernel: a symlink met on
the way is read and resolved by us *within the root* (an absolute target restarts from the
root, `..` stops at it), as Docker's `FollowSymlinkInScope` does. Because each step is relative
to a descriptor already opened, a process in the running container that swaps a directory for
a symlink between two steps cannot redirect us to the host. The last component is never
followed: it is created, replaced or read with `O_NOFOLLOW`.

Extraction refuses what a container copy has no business creating: member names with `..` or
that are absolute, hard links pointing outside the archive's root, and device nodes.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO

from stackup.errors import NotFound, RuntimeFailure

MAX_SYMLINKS = 40
"""As the kernel's limit on symlinks followed in one lookup (`ELOOP`)."""
_DIR = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


def parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class RootDir:
    """A directory that stands for `/` (a container's root or a volume's data directory)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise RuntimeFailure(f"cannot open the container's filesystem at {path}: {exc}") from exc

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open_dir(self, path: str, *, create: bool = False) -> int:
        """A descriptor (O_PATH) of directory `path`, symlinks resolved within the root; with
        `create`, missing directories are made (0755). The caller closes it."""
        todo = collections.deque(parts(path))
        stack = [os.dup(self.fd)]
        hops = 0
        try:
            while todo:
                name = todo.popleft()
                if name == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                try:
                    stack.append(os.open(name, os.O_PATH | _DIR, dir_fd=stack[-1]))
                    continue
                except FileNotFoundError:
                    if not create:
                        raise NotFound(f"no such directory in the container: {path}") from None
                    os.mkdir(name, 0o755, dir_fd=stack[-1])
                    todo.appendleft(name)
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                target = self._link(stack[-1], name, path)
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise RuntimeFailure(f"too many levels of symbolic links in the container: {path}")
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo.extendleft(reversed(parts(target)))
            result = stack.pop()
            return result
        finally:
            for fd in stack:
                os.close(fd)

    @staticmethod
    def _link(dir_fd: int, name: str, path: str) -> str:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISLNK(info.st_mode):
            raise RuntimeFailure(f"not a directory in the container: {path} ({name})")
        return os.readlink(name, dir_fd=dir_fd)

    def locate(self, path: str, *, create_parents: bool = False) -> tuple[int, str]:
        """(descriptor of the parent directory, last component) for `path`; the last component
        is not resolved. The root itself is (root descriptor, ".")."""
        names = parts(path)
        if not names:
            return os.dup(self.fd), "."
        parent = self.open_dir("/".join(names[:-1]), create=create_parents)
        if names[-1] == "..":
            os.close(parent)
            return self.locate("/".join(names[:-2]))
        return parent, names[-1]


def member_path(name: str) -> str:
    """A tar member's name, refused when it could point outside the extraction directory."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise RuntimeFailure(f"refusing archive member {name!r}: it points outside the target directory")
    return "/".join(parts(name))


def _remove(dir_fd: int, name: str, keep_dir: bool) -> None:
    """Make room for a new entry: a non-directory is removed; a directory stays if `keep_dir`
    (merged into), else it must be empty."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        if not keep_dir:
            os.rmdir(name, dir_fd=dir_fd)
        return
    os.unlink(name, dir_fd=dir_fd)


def _finish(fd: int, member: tarfile.TarInfo, owner: tuple[int, int] | None) -> None:
    os.fchown(fd, *(owner or (member.uid, member.gid)))
    os.fchmod(fd, member.mode & 0o7777)
    os.utime(fd, (member.mtime, member.mtime))


def extract(
    root: RootDir, directory: str, archive: tarfile.TarFile, *, owner: tuple[int, int] | None
) -> None:
    """Extract `archive` into `directory` (which must exist) of `root`. `owner` (uid, gid) for
    every entry, or None to keep the archive's."""
    os.close(root.open_dir(directory))  # it must exist: NotFound otherwise, as Docker answers
    base = "/".join(parts(directory))
    for member in archive:
        relative = member_path(member.name)
        if not relative:
            continue
        if member.ischr() or member.isblk():
            raise RuntimeFailure(f"refusing archive member {member.name!r}: device nodes are not copied")
        parent, name = root.locate(f"{base}/{relative}", create_parents=True)
        try:
            _extract_one(root, base, archive, member, parent=parent, name=name, owner=owner)
        finally:
            os.close(parent)


def _extract_one(
    root: RootDir, base: str, archive: tarfile.TarFile, member: tarfile.TarInfo, *, parent: int, name: str,
    owner: tuple[int, int] | None,
) -> None:  # fmt: skip
    if member.isdir():
        _remove(parent, name, keep_dir=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent)
        fd = os.open(name, os.O_RDONLY | _DIR, dir_fd=parent)
        try:
            _finish(fd, member, owner)
        finally:
            os.close(fd)
    elif member.isreg():
        _remove(parent, name, keep_dir=False)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)  # fmt: skip
        try:
            source = archive.extractfile(member)
            while source is not None and (chunk := source.read(_CHUNK)):
                os.write(fd, chunk)
            _finish(fd, member, owner)
        finally:
            os.close(fd)
    elif member.issym():
        _remove(parent, name, keep_dir=False)
        os.symlink(member.linkname, name, dir_fd=parent)
        os.chown(name, *(owner or (member.uid, member.gid)), dir_fd=parent, follow_symlinks=False)
    elif member.islnk():
        _remove(parent, name, keep_dir=False)
        source_parent, source_name = root.locate(f"{base}/{member_path(member.linkname)}")
        try:
            os.link(source_name, name, src_dir_fd=source_parent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(source_parent)
    elif member.isfifo():
        _remove(parent, name, keep_dir=False)
        os.mkfifo(name, member.mode & 0o7777, dir_fd=parent)
    else:
        raise RuntimeFailure(f"refusing archive member {member.name!r}: unsupported type {member.type!r}")


def _info(name: str, st: os.stat_result, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, link
    elif stat.S_ISREG(st.st_mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    return info


def pack(root: RootDir, path: str, out: IO[bytes]) -> None:
    """`path` of `root` as a tar stream into `out`, its last component at the top (a symlink
    as a link, not followed; device nodes and sockets are left out)."""
    parent, name = root.locate(path)
    try:
        top = name if name != "." else "."
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            for entry_parent, entry_name, arcname in _walk(parent, name, top):
                _add(archive, entry_parent, entry_name, arcname)
    except FileNotFoundError:
        raise NotFound(f"no such file or directory in the container: {path}") from None
    finally:
        os.close(parent)


def _walk(parent: int, name: str, arcname: str) -> Iterator[tuple[int, str, str]]:
    """(parent descriptor, name, archive name) of `name` and, for a directory, everything under it."""
    yield parent, name, arcname
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        return
    fd = os.open(name, os.O_RDONLY | _DIR, dir_fd=parent)
    try:
        with os.scandir(fd) as entries:
            names = sorted(entry.name for entry in entries)
        for child in names:
            yield from _walk(fd, child, f"{arcname}/{child}")
    finally:
        os.close(fd)


def _add(archive: tarfile.TarFile, parent: int, name: str, arcname: str) -> None:
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)
            or stat.S_ISFIFO(st.st_mode)):  # fmt: skip
        return
    link = os.readlink(name, dir_fd=parent) if stat.S_ISLNK(st.st_mode) else ""
    info = _info(arcname, st, link)
    if not stat.S_ISREG(st.st_mode):
        archive.addfile(info)
        return
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    with os.fdopen(fd, "rb") as source:
        archive.addfile(info, source)
