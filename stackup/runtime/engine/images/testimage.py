"""A busybox image made from Debian's `busybox-static`, for tests and benchmarks with no registry.

A static busybox needs no libraries, so one binary plus applet symlinks and a few files in /etc is
a complete userland: a shell, coreutils, `ip`, `nc`, `wget`, `httpd`, `nslookup`. Every applet the
binary was built with is linked into /bin, like the official busybox image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.images import Image

BUSYBOX = Path("/bin/busybox")
TEST_IMAGE_REF = "stackup-test/busybox:latest"
APP_UID = 1000
NOBODY_UID = 65534
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Applets the other engines' tests rely on; building fails loudly if the binary lacks one.
REQUIRED_APPLETS = (
    "sh", "ls", "cat", "echo", "sleep", "hostname", "ip", "wget", "nc", "httpd", "id", "env",
    "true", "false", "nslookup", "ps", "kill", "grep", "mkdir", "rm", "cp", "date", "touch", "wc",
    "head", "tail", "top", "ping", "mount", "chmod", "chown", "ln", "find", "sed", "awk", "tee",
)

_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    f"app:x:{APP_UID}:{APP_UID}:app:/home/app:/bin/sh\n"
    f"nobody:x:{NOBODY_UID}:{NOBODY_UID}:nobody:/nonexistent:/bin/false\n"
)
_GROUP = f"root:x:0:\napp:x:{APP_UID}:\nnobody:x:{NOBODY_UID}:\n"
_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _applets(busybox: Path) -> list[str]:
    result = subprocess.run([os.fspath(busybox), "--list"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeFailure(f"{busybox} --list failed: {result.stderr.strip()}")
    applets = sorted({name for name in result.stdout.split() if "/" not in name})
    missing = sorted(set(REQUIRED_APPLETS) - set(applets))
    if missing:
        raise RuntimeFailure(f"{busybox} lacks applets {', '.join(missing)}")
    return applets


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name.lstrip("/"))
    if not path.parts or ".." in path.parts:
        raise ValueError(f"extra file {name!r} must be a path inside the rootfs")
    return path


def build_busybox_rootfs(dest: Path, extra_files: dict[str, bytes] | None = None,
                         *, busybox: Path = BUSYBOX) -> Path:
    """Write a minimal rootfs into `dest` (created if missing) and return it.

    `extra_files` maps absolute-looking paths (`/srv/index.html`) to contents; a file starting
    with `#!` is made executable so tests can ship small scripts.
    """
    if not busybox.is_file():
        raise NotFound(f"{busybox} not found; install Debian's busybox-static")
    applets = _applets(busybox)
    for name, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777),
                       ("var/tmp", 0o1777), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755),
                       ("home/app", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755), ("sbin", 0o755),
                       ("run", 0o755), ("var/www", 0o755)):
        directory = dest / name
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(mode)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    for applet in applets:
        link = dest / "bin" / applet
        if applet != "busybox" and not link.is_symlink():
            link.symlink_to("busybox")
    if os.geteuid() == 0:
        os.chown(dest / "home" / "app", APP_UID, APP_UID)
    for name, text in (("passwd", _PASSWD), ("group", _GROUP), ("hosts", _HOSTS),
                       ("hostname", "localhost\n"), ("resolv.conf", "")):
        (dest / "etc" / name).write_text(text)
    for name, content in (extra_files or {}).items():
        path = dest / _safe_relative(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o755 if content.startswith(b"#!") else 0o644)
    return dest


def ensure_busybox_image(store: ImageStore, ref: str = TEST_IMAGE_REF) -> Image:
    """The busybox test image, imported on first use and reused afterwards."""
    try:
        return store.get(ref)
    except NotFound:
        pass
    with tempfile.TemporaryDirectory(dir=store.paths.tmp, prefix="busybox-") as tmp:
        rootfs = build_busybox_rootfs(Path(tmp) / "rootfs")
        config = {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]}
        return store.import_rootfs(rootfs, ref, config=config)
