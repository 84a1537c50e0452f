"""The OCI runtime owner: which runtime, how it runs on hybrid cgroups, the precompiled seccomp.

Real containers, as root: crun in its private mount namespace (on the hybrid dev/CI machines),
runc beside it, and the BPF the engine compiles compared with the one crun compiles itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure, UsageError
from stackup.runtime.engine import linux
from stackup.runtime.engine.containers import cgroups, conmon, ociruntime, seccomp_bpf
from stackup.runtime.engine.containers.config import ContainerConfig, default_cgroup_parent
from stackup.runtime.engine.containers.k8s_log import read_logs
from stackup.runtime.engine.containers.oci import oci_config
from stackup.runtime.engine.containers.ociruntime import RuntimeName
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.engine.images.testimage import build_busybox_rootfs
from stackup.runtime.wire.paths import EnginePaths

HAS_CRUN = ociruntime.binary_of(RuntimeName.CRUN) is not None
HAS_RUNC = ociruntime.binary_of(RuntimeName.RUNC) is not None
HYBRID = linux.hybrid_cgroup2_mount() is not None
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(conmon.CONMON).exists(), reason="needs root and conmon"
)
needs_crun = pytest.mark.skipif(not HAS_CRUN, reason="crun is not installed")


# -- choosing the runtime ------------------------------------------------------------------


def test_environment_picks_the_runtime(stackup_root: Path) -> None:
    paths = EnginePaths(stackup_root)
    for name in RuntimeName:
        if ociruntime.binary_of(name):
            chosen = ociruntime.configured(paths, {ociruntime.ENV: name.value.upper()})
            assert (chosen.name, chosen.root) == (name, paths.run / name.value)


def test_default_prefers_crun_when_installed(stackup_root: Path) -> None:
    chosen = ociruntime.configured(EnginePaths(stackup_root), {})
    assert chosen.name is (RuntimeName.CRUN if HAS_CRUN else RuntimeName.RUNC)


def test_unknown_runtime_is_a_usage_error(stackup_root: Path) -> None:
    with pytest.raises(UsageError, match="expected one of crun, runc"):
        ociruntime.configured(EnginePaths(stackup_root), {ociruntime.ENV: "kata"})


def test_crun_hides_cgroup2_only_on_hybrid_machines(stackup_root: Path) -> None:
    if not HAS_CRUN:
        pytest.skip("crun is not installed")
    crun = ociruntime.runtime(RuntimeName.CRUN, EnginePaths(stackup_root))
    assert crun.hides == linux.hybrid_cgroup2_mount()
    if HAS_RUNC:
        assert ociruntime.runtime(RuntimeName.RUNC, EnginePaths(stackup_root)).hides is None


def test_an_existing_container_keeps_the_runtime_that_holds_it(
    stackup_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (HAS_CRUN and HAS_RUNC):
        pytest.skip("needs crun and runc")
    paths = EnginePaths(stackup_root)
    (paths.run / "runc" / "old").mkdir(parents=True)
    monkeypatch.setenv(ociruntime.ENV, "crun")
    assert ociruntime.of_container("old", paths).name is RuntimeName.RUNC
    assert ociruntime.of_container("new", paths).name is RuntimeName.CRUN


# -- the private mount namespace ---------------------------------------------------------

HYBRID_INFO = """\
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/unified rw shared:12 - cgroup2 cgroup2 rw
40 1 0:50 / /var/lib/x/containers/a/rootfs rw - overlay overlay rw,lowerdir=/l
41 1 0:4 net:[4026532] /var/lib/x/run/netns/a\\040b rw - nsfs nsfs rw
"""


def test_hybrid_cgroup2_mount_and_mount_points_from_mountinfo() -> None:
    assert linux.hybrid_cgroup2_mount(HYBRID_INFO) == Path("/sys/fs/cgroup/unified")
    assert linux.hybrid_cgroup2_mount("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n") is None
    assert linux.mount_points(("overlay", "nsfs"), HYBRID_INFO) == [
        "/var/lib/x/containers/a/rootfs",
        "/var/lib/x/run/netns/a b",
    ]


def _mount_points(pid: int | str = "self") -> list[str]:
    return [line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_private_mounts_hide_and_detach_only_there(tmp_path: Path) -> None:
    """A child started in the view misses the hidden mount and the detached ones, keeps what it
    was told to keep, and the host's mount table is the same before and after."""
    points = {name: tmp_path / name for name in ("hidden", "kept", "other")}
    for point in points.values():
        point.mkdir()
        linux.mount("tmpfs", point, "tmpfs", 0, "size=1m")
    try:

        def here() -> list[str]:  # other engines on this machine may mount meanwhile
            return [p for p in _mount_points() if p.startswith(("/sys/", str(tmp_path)))]

        before = here()
        seen = linux.run_in_private_mounts(
            lambda: (
                subprocess.run(
                    ["cat", "/proc/self/mountinfo"], capture_output=True, text=True, check=True
                ).stdout
            ),
            points["hidden"],
            detach=("tmpfs",),
            under=str(tmp_path),
            keep={str(points["kept"])},
        )
        inside = [line.split()[4] for line in seen.splitlines()]
        assert str(points["kept"]) in inside
        assert str(points["hidden"]) not in inside
        assert str(points["other"]) not in inside
        assert here() == before
    finally:
        for point in points.values():
            linux.umount(point)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_private_mounts_report_a_bad_setup_apart_from_the_action(tmp_path: Path) -> None:
    with pytest.raises(linux.PrivateMountsFailed):
        linux.run_in_private_mounts(lambda: None, tmp_path)  # not a mount point: nothing to hide
    linux.mount("tmpfs", tmp_path, "tmpfs", 0, "size=1m")
    try:
        with pytest.raises(ZeroDivisionError):
            linux.run_in_private_mounts(lambda: 1 // 0, tmp_path)
    finally:
        linux.umount(tmp_path)


# -- real containers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


class Containers:
    """Makes containers under one engine root; deletes them all at the end."""

    def __init__(self, paths: EnginePaths, rootfs: Path) -> None:
        self.paths = paths
        self.rootfs = rootfs
        self.made: list[str] = []

    def config(self, *args: str, **overrides: object) -> ContainerConfig:
        cid = f"stk-rt-{uuid.uuid4().hex[:10]}"
        overrides.setdefault("rootfs", self.rootfs)
        return ContainerConfig(id=cid, name=cid, args=args, **overrides)  # type: ignore[arg-type]

    def start(self, cfg: ContainerConfig) -> None:
        self.made.append(cfg.id)
        conmon.create(cfg, self.paths.container(cfg.id).dir, paths=self.paths)
        conmon.start(cfg.id, paths=self.paths)

    def run(self, cfg: ContainerConfig) -> tuple[int | None, str]:
        self.start(cfg)
        final = conmon.wait(cfg.id, 20, paths=self.paths)
        log = self.paths.container(cfg.id).dir / "ctr.log"
        return final.exit_code, "\n".join(line.text for line in read_logs(log))


@pytest.fixture
def containers(stackup_root: Path, rootfs: Path) -> Iterator[Containers]:
    made = Containers(EnginePaths(stackup_root), rootfs)
    try:
        yield made
    finally:
        for cid in {*made.made, *conmon.list_ids(paths=made.paths)}:
            conmon.delete(cid, paths=made.paths)
        cgroups.remove(default_cgroup_parent(stackup_root))
        assert conmon.list_ids(paths=made.paths) == []


def _conmon_pid(paths: EnginePaths, container_id: str) -> int:
    return int((paths.container(container_id).dir / "conmon.pid").read_text())


@needs_root
@needs_crun
@pytest.mark.skipif(not HYBRID, reason="not a hybrid-cgroup machine")
def test_crun_on_hybrid_cgroups_leaves_the_host_alone(
    containers: Containers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """crun runs without the cgroup2 mount (it refuses hybrid cgroups otherwise), limits land in
    v1 and are seen inside, the host keeps its mounts, and conmon stays in the engine's mount
    namespace, so it pins no container's rootfs overlay once the engine unmounts it."""
    monkeypatch.setenv(ociruntime.ENV, "crun")

    def ours_and_cgroups() -> list[str]:  # other engines on this machine may mount meanwhile
        return [p for p in _mount_points() if p.startswith(("/sys/", str(containers.paths.root)))]

    host_before = ours_and_cgroups()
    rootfs = {}
    try:
        for name in ("first", "second"):
            bundle = containers.paths.container(f"stk-rt-{name}-{uuid.uuid4().hex[:6]}")
            mount_rootfs([containers.rootfs], bundle.upper, bundle.work, bundle.rootfs)
            rootfs[name] = bundle.rootfs
        first = containers.config("sleep", "300", rootfs=rootfs["first"])
        second = containers.config(
            "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; sleep 300",
            rootfs=rootfs["second"], memory=48 * 2**20, pids_limit=30,
        )  # fmt: skip
        containers.start(first)
        containers.start(second)
        assert ociruntime.of_container(second.id, containers.paths).name is RuntimeName.CRUN
        limits = cgroups.read_limits(second.cgroup_path)
        assert (limits.memory_limit, limits.pids_max) == (48 * 2**20, 30)
        assert _first_log_line(containers, second) == str(48 * 2**20)
        unified = str(linux.hybrid_cgroup2_mount())
        conmon_pid = _conmon_pid(containers.paths, second.id)
        assert os.readlink(f"/proc/{conmon_pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
        assert unified in _mount_points()
    finally:
        for cid in containers.made:
            conmon.delete(cid, paths=containers.paths)
        for point in rootfs.values():
            unmount_rootfs(point)
    assert ours_and_cgroups() == host_before


def _first_log_line(containers: Containers, cfg: ContainerConfig) -> str:
    log = containers.paths.container(cfg.id).dir / "ctr.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line.text for line in read_logs(log)] if log.exists() else []
        if lines:
            return lines[0]
        time.sleep(0.02)
    return ""


@needs_root
@pytest.mark.parametrize("runtime", [n.value for n in ociruntime.PREFERENCE if ociruntime.binary_of(n)])
def test_seccomp_filter_applies_and_privileged_lifts_it(
    containers: Containers, monkeypatch: pytest.MonkeyPatch, runtime: str
) -> None:
    """Docker's profile denies `unshare` without CAP_SYS_ADMIN, even for a user namespace the
    kernel itself would allow; a privileged container has no filter at all."""
    monkeypatch.setenv(ociruntime.ENV, runtime)
    probe = "grep Seccomp: /proc/self/status; unshare -U true 2>/dev/null && echo unshared || echo refused"
    code, out = containers.run(containers.config("sh", "-c", probe))
    assert (code, out.split()) == (0, ["Seccomp:", "2", "refused"])
    code, out = containers.run(containers.config("sh", "-c", probe, privileged=True))
    assert (code, out.split()) == (0, ["Seccomp:", "0", "unshared"])


@needs_root
@needs_crun
def test_crun_gets_the_profile_compiled_once_and_identical_to_its_own(
    containers: Containers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The annotation carries exactly the BPF crun compiles from `linux.seccomp` (checked with
    a bundle without it), compiled once per profile into the engine's cache."""
    monkeypatch.setenv(ociruntime.ENV, "crun")
    one, two = containers.config("sleep", "300"), containers.config("sleep", "300")
    containers.start(one)
    containers.start(two)
    crun = ociruntime.configured(containers.paths)
    config = json.loads((containers.paths.container(one.id).dir / "config.json").read_text())
    annotation = config["annotations"][seccomp_bpf.ANNOTATION]
    assert "seccomp" in config["linux"]  # still there, for runc
    cache = conmon.RuntimeDirs.of(containers.paths).seccomp
    assert [p.name for p in cache.iterdir()] == [
        f"{seccomp_bpf.BpfCache.key(config['linux']['seccomp'])}.bpf"
    ]
    assert (crun.root / one.id / "seccomp.bpf").read_bytes() == seccomp_bpf.compile_bpf(
        config["linux"]["seccomp"]
    )
    # crun's own compilation of the same profile, from a bundle without the annotation:
    plain = containers.config("true")
    bundle = containers.paths.container(plain.id).dir
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps(oci_config(plain)))
    for name in ("hosts", "hostname", "resolv.conf"):
        (bundle / name).write_text("")
    containers.made.append(plain.id)
    quiet = subprocess.DEVNULL  # the created container keeps its stdio: no pipes to wait on
    crun.in_view(
        lambda: subprocess.run(
            crun.argv("create", "--bundle", str(bundle), plain.id),
            stdin=quiet,
            stdout=quiet,
            stderr=quiet,
            check=True,
        )
    )
    assert (crun.root / plain.id / "seccomp.bpf").read_bytes() == seccomp_bpf.compile_bpf(
        config["linux"]["seccomp"]
    )
    assert (
        annotation
        == json.loads((containers.paths.container(two.id).dir / "config.json").read_text())["annotations"][
            seccomp_bpf.ANNOTATION
        ]
    )


def test_bpf_compiler_refuses_what_it_does_not_know() -> None:
    with pytest.raises(RuntimeFailure, match="unknown action"):
        seccomp_bpf.compile_bpf({"defaultAction": "SCMP_ACT_MAYBE", "syscalls": []})
    with pytest.raises(RuntimeFailure, match="unknown operator"):
        seccomp_bpf.compile_bpf({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}],
        })  # fmt: skip


@needs_root
@pytest.mark.skipif(not (HAS_CRUN and HAS_RUNC), reason="needs crun and runc")
def test_a_runc_container_is_still_driven_by_runc_after_a_switch_to_crun(
    containers: Containers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ociruntime.ENV, "runc")
    cfg = containers.config("sleep", "300")
    containers.start(cfg)
    monkeypatch.setenv(ociruntime.ENV, "crun")
    assert conmon.list_ids(paths=containers.paths) == [cfg.id]
    assert conmon.state(cfg.id, paths=containers.paths).status is conmon.Status.RUNNING
    assert conmon.exec_process(cfg.id, ["true"], stdout=subprocess.DEVNULL, paths=containers.paths) == 0
    conmon.delete(cfg.id, paths=containers.paths)
    assert conmon.list_ids(paths=containers.paths) == []


@needs_root
@pytest.mark.parametrize("runtime", [n.value for n in ociruntime.PREFERENCE if ociruntime.binary_of(n)])
def test_exec_merges_env_adds_caps_and_keeps_the_containers_defaults(
    containers: Containers, monkeypatch: pytest.MonkeyPatch, runtime: str
) -> None:
    """Docker's exec semantics under both runtimes: the container's env, user and cwd unless
    overridden, extra env merged over it, extra capabilities added to its own."""
    monkeypatch.setenv(ociruntime.ENV, runtime)
    cfg = containers.config("sleep", "300", env={"KEEP": "1", "OVER": "old"}, cwd="/tmp", user="app")
    containers.start(cfg)
    command = conmon.exec_command(
        cfg.id,
        ["sh", "-c", "echo $KEEP $OVER $(pwd) $(id -u); grep CapBnd /proc/self/status"],
        env={"OVER": "new"},
        capabilities=("CAP_SYS_ADMIN",),
        paths=containers.paths,
    )
    try:
        proc = command.popen(stdout=subprocess.PIPE)
        out = proc.communicate(timeout=20)[0].decode()
    finally:
        command.cleanup()
    first, caps = out.splitlines()
    assert first == "1 new /tmp 1000"
    assert int(caps.split()[1], 16) & (1 << 21)  # CAP_SYS_ADMIN joined the bounding set
    assert not command.process_file.exists()
    top = conmon.top(cfg.id, paths=containers.paths)
    assert any(row[-1] == "sleep 300" for row in top.processes)
