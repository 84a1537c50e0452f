"""Debian base images without a registry: `debootstrap --variant=minbase SUITE DIR MIRROR`.

debootstrap takes minutes, so its result is kept as a rootfs tar in a machine-wide cache
(`/var/cache/stackup/debootstrap/`, keyed by suite, variant, architecture and mirror) under a
lock: a second engine root on the same machine (every test session) imports the tar in seconds,
and two engines asking at once run debootstrap once. The tar is tidied the way Docker's Debian
images are (no package cache or lists, no device nodes, no host resolv.conf); `-slim` drops
documentation, man pages and locales and installs the dpkg filter that keeps them out of later
`apt-get install`s, as Docker's slim variants do.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.engine.images.aptsources import mirror_for
from stackup.runtime.engine.images.archive import host_architecture
from stackup.runtime.engine.images.layers import pack_directory
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.images import Image

CACHE_ENV = "STACKUP_CACHE_DIR"
DEFAULT_CACHE = Path("/var/cache/stackup")
VARIANT = "minbase"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BASE = re.compile(r"^debian:(?P<suite>[a-z]+)(?P<slim>-slim)?$")
_SLIM_DROPPED = ("usr/share/doc/", "usr/share/man/", "usr/share/groff/", "usr/share/info/",
                 "usr/share/lintian/", "usr/share/linda/", "usr/share/locale/", "var/cache/man/")
_SLIM_FILTER = "".join(f"path-exclude /{d}*\n" for d in _SLIM_DROPPED[:-1]) + \
    "path-include /usr/share/doc/*/copyright\n"
_TIDY = ("var/cache/apt/archives", "var/lib/apt/lists", "dev", "var/log", "tmp", "run")

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DebianBase:
    """`debian:bookworm` or `debian:bookworm-slim`, parsed."""

    suite: str
    slim: bool

    @classmethod
    def parse(cls, name: str) -> DebianBase | None:
        match = _BASE.match(name)
        return cls(match["suite"], bool(match["slim"])) if match else None

    @property
    def name(self) -> str:
        return f"debian:{self.suite}" + ("-slim" if self.slim else "")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def dpkg_architecture() -> str:
    result = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else host_architecture()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root` (debootstrap mounts /proc and /sys while it works)."""
    prefix = os.fspath(root.resolve())
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _remove_tree(root: Path) -> None:
    """Unmount what a killed debootstrap left mounted before deleting: never recurse into /proc."""
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    if not _mounts_under(root):
        shutil.rmtree(root, ignore_errors=True)


def _tidy(root: Path) -> None:
    for name in _TIDY:
        directory = root / name
        if directory.is_dir():
            for entry in directory.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    if name != "var/log":
                        shutil.rmtree(entry)
                else:
                    entry.unlink()
    for name in ("etc/resolv.conf", "etc/hostname"):
        (root / name).unlink(missing_ok=True)
        (root / name).write_text("")
    for cache in (root / "var/cache/apt").glob("*.bin"):
        cache.unlink()


def rootfs_tar(suite: str, mirror: str, progress: Progress) -> Path:
    """The cached debootstrap result for (suite, minbase, arch, mirror), made on first use."""
    arch = dpkg_architecture()
    directory = cache_dir() / "debootstrap"
    directory.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{suite}\0{VARIANT}\0{arch}\0{mirror}".encode()).hexdigest()[:16]
    tar = directory / f"{suite}-{VARIANT}-{arch}-{key}.tar"
    with _locked(directory / f"{tar.stem}.lock"):
        if tar.is_file():
            progress(f"using the cached {suite} rootfs {tar}")
            return tar
        if shutil.which("debootstrap") is None:
            raise NotFound("debootstrap is not installed; install Debian's `debootstrap` package")
        work = Path(tempfile.mkdtemp(dir=directory, prefix=".tmp-"))
        try:
            target = work / "rootfs"
            argv = ["debootstrap", f"--variant={VARIANT}", f"--arch={arch}", suite, os.fspath(target), mirror]
            progress("$ " + " ".join(argv))
            _run(argv, progress)
            _tidy(target)
            progress(f"packing {target} into the cache")
            with open(work / "rootfs.tar", "wb") as out:
                pack_directory(target, out)
            os.replace(work / "rootfs.tar", tar)
        finally:
            _remove_tree(work)
    return tar


def _run(argv: list[str], progress: Progress) -> None:
    tail: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            progress(line.rstrip())
            tail = [*tail[-19:], line.rstrip()]
    if proc.returncode != 0:
        raise RuntimeFailure(f"debootstrap failed (exit {proc.returncode}):\n" + "\n".join(tail))


def slim_tar(full: Path, out: Path) -> None:
    """`full` without docs (copyright files stay), man pages and locales, plus the dpkg filter."""

    def dropped(name: str) -> bool:
        name = name.removeprefix("./")
        for prefix in _SLIM_DROPPED:
            if name.startswith(prefix) and name != prefix.rstrip("/"):
                return not (prefix == "usr/share/doc/" and name.endswith("/copyright"))
        return False

    with tarfile.open(full, "r:") as source, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dest:
        for member in source:
            if dropped(member.name):
                continue
            if member.islnk() and dropped(member.linkname):  # its data is in a dropped entry: copy it
                target = source.getmember(member.linkname)
                data = source.extractfile(target)
                member.type, member.linkname, member.size = tarfile.REGTYPE, "", target.size
                dest.addfile(member, data)
                continue
            dest.addfile(member, source.extractfile(member) if member.isreg() else None)
        info = tarfile.TarInfo("./etc/dpkg/dpkg.cfg.d/slim")
        info.size, info.mode = len(_SLIM_FILTER), 0o644
        dest.addfile(info, io.BytesIO(_SLIM_FILTER.encode()))


def bootstrap_debian(store: ImageStore, base: DebianBase, ref: str, mirror: str | None,
                     progress: Progress) -> Image:
    """Import the (cached) debootstrap rootfs as `ref`, slimmed for a `-slim` base."""
    mirror = mirror or mirror_for(base.suite)
    full = rootfs_tar(base.suite, mirror, progress)
    config = {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["bash"]}
    created_by = f"debootstrap --variant={VARIANT} {base.suite} / {mirror}"
    if not base.slim:
        progress(f"importing {base.name} as {ref}")
        return store.import_rootfs(full, ref, config=config, created_by=created_by)
    with tempfile.TemporaryDirectory(dir=store.paths.tmp, prefix="slim-") as tmp:
        progress(f"slimming {base.name}: no docs, man pages or locales")
        slim_tar(full, Path(tmp) / "rootfs.tar")
        progress(f"importing {base.name} as {ref}")
        return store.import_rootfs(Path(tmp) / "rootfs.tar", ref, config=config,
                                   created_by=created_by + " (slim)")
