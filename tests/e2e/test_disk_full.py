"""STACKUP_ROOT on a nearly full filesystem (a 48 MiB tmpfs made here): `up`, `build` and `pull`
fail with one clear line, "no space left under <root>: ...", and corrupt nothing: the state
database passes SQLite's integrity check, earlier images and volume data are intact, no layer,
blob, record, temporary file, container, network or volume is left half-made, and once space is
freed the same command succeeds."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.registry.media import OCI_MANIFEST
from tests.e2e.conftest import IMAGE, Stackup
from tests.registry._images import Layout, payload
from tests.registry._registry import RegistryServer, skopeo

pytestmark = pytest.mark.engine

SIZE_MB = 48
FULL = "no space left under"


@pytest.fixture(scope="module")
def small() -> Iterator[Stackup]:
    """An engine whose root is on its own small tmpfs, with the busybox image."""
    if os.geteuid() != 0:
        pytest.fail("the disk-full tests mount a tmpfs and run the real engine (root)")
    mount = Path(tempfile.mkdtemp(prefix="stackup-e2e-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "stackup-full", str(mount)], check=True)
    su = Stackup(root=mount / "root")
    try:
        su.run("image", "bootstrap", "busybox", IMAGE)
        yield su
    finally:
        for name in sorted(su.projects):
            su.run("-p", name, "down", "-v", "-t", "1", check=False)
        su.run("engine", "stop", check=False)
        subprocess.run(["umount", "-l", str(mount)], check=False)
        with contextlib.suppress(OSError):
            mount.rmdir()


def _free(root: Path) -> int:
    stat = os.statvfs(root)
    return stat.f_bavail * stat.f_frsize


@contextlib.contextmanager
def filled(root: Path, leave: int = 0) -> Iterator[None]:
    """The filesystem of `root` filled up to `leave` bytes free, for the duration."""
    filler = root.parent / "filler"
    try:
        with open(filler, "wb") as out:
            try:
                for size in (1 << 20, 4096):
                    while _free(root) - size >= leave:
                        out.write(b"\0" * size)
                        out.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        yield
    finally:
        filler.unlink(missing_ok=True)


def state_is_sound(su: Stackup) -> None:
    """The state database opens and passes SQLite's own check; the store has no temp files."""
    with contextlib.closing(sqlite3.connect(su.root / "state.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not list((su.root / "tmp").iterdir()), list((su.root / "tmp").iterdir())
    images = su.root / "images"
    entries = [*images.iterdir(), *(images / "blobs").rglob("*"), *(images / "records").rglob("*"),
               *(images / "layers").iterdir()]  # not into the layers' own files
    partial = [p for p in entries if p.name.startswith(".") or "tmp" in p.name or ".part" in p.name]
    assert not partial, partial


def store(su: Stackup) -> set[str]:
    images = su.root / "images"
    return {str(p.relative_to(images)) for sub in ("blobs", "layers", "records")
            for p in (images / sub).rglob("*")}  # fmt: skip


def one_clear_line(proc: subprocess.CompletedProcess[str], root: Path) -> None:
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and all(f"{FULL} {root}" in line for line in errors), proc.stderr
    assert "Traceback" not in proc.stderr and "engine bug" not in proc.stderr


STACK = """
services:
  app:
    image: $IMAGE
    command: ["sh", "-c", "exec sleep 3600"]
    stop_grace_period: 1s
    volumes: [data:/data]
volumes:
  data: {}
"""


def test_up_on_a_full_disk_fails_clearly_and_keeps_earlier_data(small: Stackup, tmp_path: Path) -> None:
    cwd = small.project(tmp_path, STACK, prefix="full")
    small.run("up", "-d", cwd=cwd)
    small.run("exec", "-T", "app", "sh", "-c", "echo kept-token > /data/token", cwd=cwd)
    small.run("down", "-t", "1", cwd=cwd)  # the volume stays
    with filled(small.root):
        failed = small.run("up", "-d", cwd=cwd, check=False)
        one_clear_line(failed, small.root)
    state_is_sound(small)
    assert json.loads(small.run("ps", "-a", "--format", "json", cwd=cwd).stdout or "[]") == []
    small.run("up", "-d", cwd=cwd)
    read = small.run("exec", "-T", "app", "cat", "/data/token", cwd=cwd)
    assert read.stdout.strip() == "kept-token"
    small.run("down", "-v", "-t", "1", cwd=cwd)


def test_build_that_overflows_the_disk_records_no_layer(small: Stackup, tmp_path: Path) -> None:
    cwd = small.project(tmp_path, "services:\n  b:\n    build: .\n    image: fullbuild:1\n", prefix="fullb")
    free = _free(small.root)
    # the RUN itself fits, its layer (incompressible, the same size again) does not
    (cwd / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN head -c {free * 6 // 10} /dev/urandom > /big\n")
    before = store(small)
    failed = small.run("build", cwd=cwd, check=False)
    one_clear_line(failed, small.root)
    state_is_sound(small)
    assert store(small) == before
    assert "fullbuild:1" not in small.run("image", "ls", cwd=cwd).stdout
    assert "0 entries" in small.run("builder", "du", cwd=cwd).stdout
    (cwd / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN head -c 1000 /dev/urandom > /small\n")
    small.run("build", cwd=cwd)  # space is back: the same command works
    small.run("image", "rm", "fullbuild:1", cwd=cwd)


def test_pull_that_overflows_the_disk_stores_nothing(small: Stackup, tmp_path: Path) -> None:
    with RegistryServer(Path(tempfile.mkdtemp(dir=tmp_path))) as registry:
        layout = Layout()
        layers = [{"big": payload("big", 12_000_000)}, {"more": payload("more", 4_000_000)}]
        digest, raw = layout.image(layers)
        directory = layout.write(tmp_path / "oci-big", {"v1": (digest, raw, OCI_MANIFEST)})
        skopeo("copy", "--dest-tls-verify=false", f"oci:{directory}:v1", f"docker://{registry.host}/full/big:v1")
        ref = f"{registry.host}/full/big:v1"
        before = store(small)
        with filled(small.root, leave=8 << 20):
            failed = small.run("image", "pull", ref, check=False)
        one_clear_line(failed, small.root)
        state_is_sound(small)
        assert store(small) == before  # no blob, layer or record of the failed pull
        assert ref not in small.run("image", "ls").stdout
        small.run("image", "pull", ref)  # space is back
        small.run("image", "rm", ref)
