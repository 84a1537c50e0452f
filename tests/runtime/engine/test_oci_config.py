"""config.json generation, user resolution and the seccomp resolver: pure, no runtime needed."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers import oci
from stackup.runtime.engine.containers.config import (
    ContainerConfig,
    HostEntry,
    Mount,
    MountKind,
    NetworkMode,
    resolve_user,
    rootfs_path,
)
from stackup.runtime.engine.containers.seccomp import default_seccomp


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n")
    return root


def make(rootfs: Path, **overrides: Any) -> ContainerConfig:
    values: dict[str, Any] = {"id": "c1", "name": "web-1", "rootfs": rootfs, "args": ("sleep", "1")}
    values.update(overrides)
    return ContainerConfig(cgroup_parent="/stackup-test", **values)


def allowed(profile: dict[str, Any]) -> set[str]:
    return {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}


def test_docker_defaults(rootfs: Path) -> None:
    config = oci.oci_config(make(rootfs))
    caps = config["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == list(oci.DEFAULT_CAPABILITIES)
    assert len(caps["bounding"]) == 14
    linux = config["linux"]
    assert linux["maskedPaths"] == list(oci.MASKED_PATHS)
    assert "/proc/sys" in linux["readonlyPaths"]
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "cgroup", "network"]
    assert linux["cgroupsPath"] == "/stackup-test/c1"
    assert linux["sysctl"] == oci.DEFAULT_SYSCTLS
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert config["hostname"] == "c1"
    assert config["root"] == {"path": str(rootfs), "readonly": False}
    assert config["process"]["user"] == {"uid": 0, "gid": 0, "additionalGids": []}
    assert "rlimits" not in config["process"] or config["process"]["rlimits"] == []
    destinations = [m["destination"] for m in config["mounts"]]
    assert destinations[:7] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    etc = {m["destination"]: m["source"] for m in config["mounts"] if m["destination"].startswith("/etc/")}
    assert etc == {"/etc/hosts": "hosts", "/etc/hostname": "hostname", "/etc/resolv.conf": "resolv.conf"}


def test_cap_add_drop_and_privileged(rootfs: Path) -> None:
    caps = oci.capabilities(make(rootfs, cap_drop=["net_raw", "CAP_MKNOD"], cap_add=["SYS_ADMIN"]))
    assert "CAP_NET_RAW" not in caps and "CAP_MKNOD" not in caps and "CAP_SYS_ADMIN" in caps
    assert oci.capabilities(make(rootfs, cap_drop=["ALL"], cap_add=["chown"])) == ["CAP_CHOWN"]
    with pytest.raises(RuntimeFailure, match="CAP_BOGUS"):
        oci.capabilities(make(rootfs, cap_add=["bogus"]))
    config = oci.oci_config(make(rootfs, privileged=True))
    assert "CAP_SYS_ADMIN" in config["process"]["capabilities"]["bounding"]
    assert "seccomp" not in config["linux"] and "maskedPaths" not in config["linux"]
    assert config["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    sysfs = next(m for m in config["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sysfs["options"]


def test_seccomp_rules_follow_capabilities_arch_and_kernel() -> None:
    plain = default_seccomp(oci.DEFAULT_CAPABILITIES, machine="x86_64", kernel_release="6.1.0-13-amd64")
    assert plain["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = allowed(plain)
    assert {"read", "arch_prctl", "ptrace"} <= names
    assert not {"mount", "unshare", "setns", "reboot", "keyctl"} & names
    errno_rules = [r for r in plain["syscalls"] if r["action"] == "SCMP_ACT_ERRNO"]
    assert [(r["names"], r["errnoRet"]) for r in errno_rules] == [(["clone3"], 38)]
    admin = default_seccomp(
        [*oci.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], machine="x86_64", kernel_release="6.1"
    )
    assert {"mount", "unshare", "setns", "clone3"} <= allowed(admin)
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in admin["syscalls"])
    old_kernel = default_seccomp(oci.DEFAULT_CAPABILITIES, machine="x86_64", kernel_release="4.4.0")
    assert "ptrace" not in allowed(old_kernel)
    arm = default_seccomp(oci.DEFAULT_CAPABILITIES, machine="aarch64", kernel_release="6.1")
    assert "arch_prctl" not in allowed(arm) and "arm_fadvise64_64" in allowed(arm)


def test_resources(rootfs: Path) -> None:
    config = oci.oci_config(make(rootfs, memory=256 * 2**20, cpus=1.5, pids_limit=100, shm_size=2**27))
    resources = config["linux"]["resources"]
    assert resources["memory"]["limit"] == 256 * 2**20
    assert resources["cpu"] == {"quota": 150_000, "period": 100_000}
    assert resources["pids"] == {"limit": 100}
    shm = next(m for m in config["mounts"] if m["destination"] == "/dev/shm")
    assert f"size={2**27}" in shm["options"]
    assert oci.oci_config(make(rootfs, pids_limit=-1))["linux"]["resources"]["pids"] == {"limit": -1}


def test_network_modes_and_sysctls(rootfs: Path, tmp_path: Path) -> None:
    host = oci.oci_config(make(rootfs, network_mode="host", sysctls={"kernel.msgmax": "1"}))
    assert "network" not in [ns["type"] for ns in host["linux"]["namespaces"]]
    assert host["linux"]["sysctl"] == {"kernel.msgmax": "1"}
    joined = oci.oci_config(make(rootfs, network_mode=NetworkMode.PATH, netns_path=tmp_path / "ns"))
    assert {"type": "network", "path": str(tmp_path / "ns")} in joined["linux"]["namespaces"]
    with pytest.raises(ValidationError, match="netns_path"):
        make(rootfs, network_mode="path")


def test_process_env_user_init_ulimits(rootfs: Path) -> None:
    cfg = make(
        rootfs, user="app", tty=True, init=True, env={"PATH": "/bin", "A": "1"},
        ulimits=[{"name": "nofile", "soft": 1024, "hard": 2048}, {"name": "core", "soft": -1, "hard": -1}],
    )  # fmt: skip
    process = oci.oci_config(cfg)["process"]
    assert process["args"] == [oci.INIT_PATH, "--", "sleep", "1"]
    assert process["env"] == ["PATH=/bin", "HOSTNAME=c1", "TERM=xterm", "A=1", "HOME=/home/app"]
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [50]}
    assert process["terminal"] is True
    assert process["rlimits"] == [
        {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1},
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
    ]
    init = next(m for m in oci.oci_config(cfg)["mounts"] if m["destination"] == oci.INIT_PATH)
    assert init["source"] == str(oci.CATATONIT) and "ro" in init["options"]


def test_user_mounts_sorted_and_override_defaults(rootfs: Path, tmp_path: Path) -> None:
    cfg = make(
        rootfs,
        mounts=[
            Mount(kind=MountKind.BIND, source=tmp_path, target="/data/sub", read_only=True),
            Mount(kind=MountKind.VOLUME, source=tmp_path, target="/data"),
            Mount(kind=MountKind.TMPFS, target="/dev/shm", tmpfs_size=1024, tmpfs_mode=0o1777),
        ],
    )
    mounts = oci.oci_config(cfg)["mounts"]
    user = [m for m in mounts if m["destination"] in ("/data", "/data/sub", "/dev/shm")]
    assert [m["destination"] for m in user] == ["/data", "/data/sub", "/dev/shm"]
    assert user[1]["options"] == ["rbind", "rprivate", "ro"]
    assert user[2] == {
        "destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "size=1024", "mode=1777"],
    }  # fmt: skip
    with pytest.raises(ValidationError, match="needs an absolute host source"):
        Mount(kind=MountKind.BIND, target="/x")


@pytest.mark.parametrize(
    ("user", "uid", "gid", "groups"),
    [
        ("", 0, 0, ()),
        ("app", 1000, 1000, (50,)),
        ("1000", 1000, 1000, (50,)),
        ("app:staff", 1000, 50, ()),
        ("1000:0", 1000, 0, ()),
        ("4242", 4242, 0, ()),
        ("4242:4343", 4242, 4343, ()),
    ],
)
def test_resolve_user(rootfs: Path, user: str, uid: int, gid: int, groups: tuple[int, ...]) -> None:
    resolved = resolve_user(rootfs, user)
    assert (resolved.uid, resolved.gid, resolved.additional_gids) == (uid, gid, groups)


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("nosuch", "unable to find user 'nosuch'"),
        ("app:nogroup", "unable to find group 'nogroup'"),
        (":1", "empty"),
    ],
)
def test_resolve_user_errors(rootfs: Path, user: str, message: str) -> None:
    with pytest.raises(RuntimeFailure, match=message):
        resolve_user(rootfs, user)


def test_passwd_symlink_stays_inside_rootfs(rootfs: Path) -> None:
    (rootfs / "usr" / "lib").mkdir(parents=True)
    (rootfs / "etc" / "passwd").rename(rootfs / "usr" / "lib" / "passwd")
    (rootfs / "etc" / "passwd").symlink_to("/usr/lib/passwd")  # absolute: must not read the host's
    assert rootfs_path(rootfs, "/etc/passwd") == rootfs / "usr" / "lib" / "passwd"
    assert resolve_user(rootfs, "app").uid == 1000
    (rootfs / "etc" / "loop").symlink_to("loop")
    with pytest.raises(RuntimeFailure, match="too many symlinks"):
        rootfs_path(rootfs, "/etc/loop")


def test_etc_files(rootfs: Path, tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\nsearch corp.example\n")
    cfg = make(rootfs, extra_hosts=[HostEntry(hostname="db", address="10.0.0.2")])
    assert oci.resolv_conf(cfg, host) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch corp.example\n"
    hosted = make(rootfs, network_mode="host")
    assert oci.resolv_conf(hosted, host).startswith("nameserver 127.0.0.53\n")
    explicit = make(rootfs, dns=["1.1.1.1"], dns_search=["a.b"], dns_options=["ndots:2"])
    assert oci.resolv_conf(explicit, host) == "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"
    hosts = oci.hosts_file(cfg)
    assert hosts.startswith("127.0.0.1\tlocalhost\n") and hosts.endswith("10.0.0.2\tdb\n")


def test_write_bundle(rootfs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    cfg = make(rootfs, hostname="web")
    oci.write_bundle(cfg, bundle)
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "hostname", "hosts", "resolv.conf"]
    assert (bundle / "hostname").read_text() == "web\n"
    assert oci.rootfs_of(bundle) == rootfs


def test_config_validation(rootfs: Path) -> None:
    assert make(rootfs, stop_signal="TERM").stop_signal is signal.SIGTERM
    assert make(rootfs, stop_signal="9").stop_signal is signal.SIGKILL
    assert make(rootfs, stop_signal="sigquit").stop_signal is signal.SIGQUIT
    with pytest.raises(ValidationError, match="unknown signal"):
        make(rootfs, stop_signal="SIGNOPE")
    with pytest.raises(ValidationError):
        make(rootfs, id="../escape")
    with pytest.raises(ValidationError, match="absolute"):
        ContainerConfig(id="c1", name="c1", rootfs=Path("relative"), args=("true",))
    with pytest.raises(ValidationError):
        make(rootfs, args=())
    cfg = make(rootfs)
    with pytest.raises(ValidationError):
        cfg.id = "other"
