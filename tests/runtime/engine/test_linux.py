"""ctypes syscall wrappers, mountinfo parsing and cgroup layout detection."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stackup.runtime.engine import linux
from stackup.runtime.wire.paths import DEFAULT_ROOT, EnginePaths

V1 = """\
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/pids rw shared:11 - cgroup cgroup rw,pids
"""
HYBRID = V1 + "33 30 0:29 / /sys/fs/cgroup/unified rw shared:12 - cgroup2 cgroup2 rw\n"
V2 = "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"


@pytest.mark.parametrize(("mountinfo", "layout"), [
    (V1, linux.CgroupLayout.V1), (HYBRID, linux.CgroupLayout.HYBRID), (V2, linux.CgroupLayout.V2)])
def test_cgroup_layout_from_mountinfo(mountinfo: str, layout: linux.CgroupLayout) -> None:
    assert linux.cgroup_layout(mountinfo) is layout


@pytest.mark.skipif(not Path("/sys/fs/cgroup/unified").is_dir(), reason="not the hybrid dev machine")
def test_this_machine_is_hybrid() -> None:
    assert linux.cgroup_layout() is linux.CgroupLayout.HYBRID


def test_mount_fstype_reads_the_topmost_mount_and_escapes() -> None:
    info = ("40 1 0:50 / /mnt/a\\040b rw - tmpfs tmpfs rw\n"
            "41 40 0:51 / /mnt/a\\040b rw - overlay overlay rw,lowerdir=/x\n")
    assert linux.mount_fstype("/mnt/a b", info) == "overlay"
    assert linux.mount_fstype("/mnt/a", info) is None
    assert linux.mount_fstype("/") is not None


def test_errors_carry_errno_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(OSError) as caught:
        linux.umount(tmp_path, 0)  # exists, but is not a mount point
    assert caught.value.errno == errno.EINVAL
    assert "umount(" in str(caught.value) and str(tmp_path) in str(caught.value)
    with pytest.raises(FileNotFoundError):
        linux.umount(tmp_path / "missing", 0)


@pytest.mark.engine
@pytest.mark.skipif(os.geteuid() != 0, reason="mount needs root")
def test_mount_and_umount_a_tmpfs(tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    linux.mount("tmpfs", target, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m,mode=0700")
    try:
        assert linux.mount_fstype(target) == "tmpfs"
        (target / "f").write_text("x")
    finally:
        linux.umount(target)
    assert linux.mount_fstype(target) is None and not (target / "f").exists()


@pytest.mark.engine
@pytest.mark.skipif(os.geteuid() != 0, reason="unshare needs root")
def test_unshare_and_setns_in_a_child_process() -> None:
    """In a child, so the test process never leaves its own network namespace."""
    script = textwrap.dedent("""
        import os
        from stackup.runtime.engine import linux
        host = os.readlink("/proc/self/ns/net")
        keep = os.open("/proc/self/ns/net", os.O_RDONLY)
        linux.unshare(linux.CLONE_NEWNET)
        inside = os.readlink("/proc/self/ns/net")
        linux.setns(keep, linux.CLONE_NEWNET)
        print(host != inside, os.readlink("/proc/self/ns/net") == host)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True"]


def test_engine_paths_follow_stackup_root(stackup_root: Path) -> None:
    paths = EnginePaths.from_env()
    assert paths.root == stackup_root
    assert paths.run == stackup_root / "run" and paths.socket.parent == stackup_root
    assert paths.blobs.is_relative_to(paths.images) and paths.layers.is_relative_to(paths.images)
    assert paths.container("web-1").rootfs == stackup_root / "containers/web-1/rootfs"
    assert EnginePaths.from_env({}).root == DEFAULT_ROOT
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="invalid container id"):
            paths.container(bad)
