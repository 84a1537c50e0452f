"""One real container at a time: crun or runc + conmon on a busybox rootfs, as root.

Every test runs once per installed OCI runtime (`STACKUP_OCI_RUNTIME`), gets a private
STACKUP_ROOT (so a private runtime root and cgroup parent), and the `engine` fixture deletes
every container it made, their cgroups and the engine's cgroup parent, even when the test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers import cgroups, conmon, ociruntime
from stackup.runtime.engine.containers.config import ContainerConfig, default_cgroup_parent
from stackup.runtime.engine.containers.k8s_log import read_logs
from stackup.runtime.engine.containers.overlay import mount_rootfs, unmount_rootfs
from stackup.runtime.engine.images.testimage import build_busybox_rootfs
from stackup.runtime.wire.paths import EnginePaths

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0 or not Path(conmon.CONMON).exists(), reason="needs root and conmon"),
]

#: The test image's groups plus one the user `app` is a supplementary member of.
GROUP = "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnobody:x:65534:\n"


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox-static rootfs (plain directory) shared by the module's containers."""
    dest = tmp_path_factory.mktemp("busybox") / "rootfs"
    return build_busybox_rootfs(dest, {"/etc/group": GROUP.encode()})


@dataclass
class Engine:
    """Creates containers under one engine root and remembers them for cleanup."""

    paths: EnginePaths
    rootfs: Path
    made: list[str] = field(default_factory=list)

    def config(self, *args: str, **overrides: Any) -> ContainerConfig:
        cid = f"stk-test-{uuid.uuid4().hex[:10]}"
        return ContainerConfig(id=cid, name=cid, rootfs=self.rootfs, args=args, **overrides)

    def bundle(self, cfg: ContainerConfig) -> Path:
        return self.paths.container(cfg.id).dir

    def create_start(self, cfg: ContainerConfig) -> int:
        self.made.append(cfg.id)
        pid = conmon.create(cfg, self.bundle(cfg), paths=self.paths)
        conmon.start(cfg.id, paths=self.paths)
        return pid

    def run(self, cfg: ContainerConfig) -> tuple[int | None, str]:
        """Run to completion: exit code and stdout+stderr text from the log."""
        self.create_start(cfg)
        final = conmon.wait(cfg.id, 20, paths=self.paths)
        return final.exit_code, self.output(cfg)

    def output(self, cfg: ContainerConfig) -> str:
        return "\n".join(line.text for line in read_logs(self.bundle(cfg) / "ctr.log"))


INSTALLED_RUNTIMES = [name.value for name in ociruntime.PREFERENCE if ociruntime.binary_of(name)]


@pytest.fixture(params=INSTALLED_RUNTIMES)
def engine(
    stackup_root: Path, rootfs: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    monkeypatch.setenv(ociruntime.ENV, request.param)
    eng = Engine(paths=EnginePaths(stackup_root), rootfs=rootfs)
    try:
        yield eng
    finally:
        for cid in {*eng.made, *conmon.list_ids(paths=eng.paths)}:
            conmon.delete(cid, paths=eng.paths)
        # Belt and braces for the leak check, which looks at runc's default root.
        default = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True, check=False).stdout
        for cid in default.split():
            if cid in eng.made:
                subprocess.run(["runc", "delete", "-f", cid], check=False)
        parent = default_cgroup_parent(stackup_root)
        cgroups.remove(parent)
        assert not cgroups.cgroup_dirs(parent)
        assert conmon.list_ids(paths=eng.paths) == []
        exits = conmon.RuntimeDirs.of(eng.paths).exits
        assert not exits.exists() or list(exits.iterdir()) == []


def test_echo_hello_is_logged(engine: Engine) -> None:
    code, out = engine.run(engine.config("echo", "hello"))
    assert (code, out) == (0, "hello")
    lines = list(read_logs(engine.paths.container(engine.made[0]).dir / "ctr.log"))
    assert [(line.stream, line.text) for line in lines] == [("stdout", "hello")]


def test_exit_code_and_stderr(engine: Engine) -> None:
    code, out = engine.run(engine.config("sh", "-c", "echo oops >&2; exit 7"))
    assert code == 7
    assert out == "oops"


_CREATOR = """
import sys
from pathlib import Path
from stackup.runtime.engine.containers import conmon
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.engine.containers.config import ContainerConfig
paths = EnginePaths.from_env()
cfg = ContainerConfig(id=sys.argv[1], name=sys.argv[1], rootfs=Path(sys.argv[2]), args=tuple(sys.argv[3:]))
print(conmon.create(cfg, paths.container(cfg.id).dir, paths=paths))
conmon.start(cfg.id, paths=paths)
"""


def _create_in_another_process(engine: Engine, cid: str, *args: str) -> int:
    engine.made.append(cid)
    proc = subprocess.run(
        [sys.executable, "-c", _CREATOR, cid, str(engine.rootfs), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(proc.stdout.strip())


def test_container_outlives_the_process_that_started_it(engine: Engine) -> None:
    cid = f"stk-test-{uuid.uuid4().hex[:10]}"
    pid = _create_in_another_process(engine, cid, "sleep", "300")
    os.kill(pid, 0)  # still there after its creator (and conmon's intermediate) exited
    current = conmon.state(cid, paths=engine.paths)
    assert current.status is conmon.Status.RUNNING
    assert current.pid == pid
    top = conmon.top(cid, paths=engine.paths)
    assert "PID" in top.titles
    assert any("sleep 300" in row[-1] for row in top.processes)


def test_exit_recorded_while_no_stackup_process_watched(engine: Engine) -> None:
    cid = f"stk-test-{uuid.uuid4().hex[:10]}"
    _create_in_another_process(engine, cid, "sh", "-c", "sleep 0.3; exit 7")
    exit_file = conmon.RuntimeDirs.of(engine.paths).exit_file(cid)
    deadline = time.monotonic() + 20
    while not exit_file.exists() and time.monotonic() < deadline:  # watch the file, not the process
        time.sleep(0.05)
    final = conmon.state(cid, paths=engine.paths)
    assert (final.status, final.exit_code) == (conmon.Status.STOPPED, 7)
    assert final.finished_at is not None


def test_stop_escalates_to_sigkill_when_pid1_ignores_sigterm(engine: Engine) -> None:
    cfg = engine.config("sleep", "300")
    engine.create_start(cfg)
    started = time.monotonic()
    final = conmon.stop(cfg.id, signal.SIGTERM, 0.5, paths=engine.paths)
    elapsed = time.monotonic() - started
    assert final.exit_code == 128 + signal.SIGKILL
    assert elapsed >= 0.5


def _catatonit_takes(pid: int, sig: int) -> bool:
    """Whether `pid` runs catatonit and blocks `sig` for its signalfd (SigBlk in /proc/<pid>/status).

    The runtime's own init blocks signals too before it execs: hence the command line check."""
    if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"/dev/init\0"):
        return False
    masks = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return bool(int(masks["SigBlk"], 16) >> (sig - 1) & 1)


def test_stop_with_init_forwards_sigterm(engine: Engine) -> None:
    cfg = engine.config("sleep", "300", init=True)
    pid = engine.create_start(cfg)
    # PID 1 drops signals it does not take: wait until catatonit took SIGTERM
    # (a stop within its first milliseconds escalates to SIGKILL, as it would with Docker).
    deadline = time.monotonic() + 10
    while not _catatonit_takes(pid, signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.01)
    final = conmon.stop(cfg.id, signal.SIGTERM, 10, paths=engine.paths)
    assert final.exit_code == 128 + signal.SIGTERM


def test_catatonit_is_pid1(engine: Engine) -> None:
    code, out = engine.run(
        engine.config("sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; echo; echo $$", init=True)
    )
    assert code == 0
    cmdline, own_pid = out.splitlines()
    assert cmdline.startswith("/dev/init -- sh -c")
    assert own_pid != "1"


def test_exec_passes_exit_code_and_output(engine: Engine) -> None:
    cfg = engine.config("sleep", "300")
    engine.create_start(cfg)
    with tempfile.TemporaryFile() as out:
        code = conmon.exec_process(
            cfg.id, ["sh", "-c", "echo $GREETING from $(pwd) as $(id -u):$(id -g); exit 5"],
            env={"GREETING": "hi"}, user="app", cwd="/tmp", stdout=out, paths=engine.paths,
        )  # fmt: skip
        out.seek(0)
        assert (code, out.read().decode().strip()) == (5, "hi from /tmp as 1000:1000")


def test_exec_in_stopped_container_is_an_error(engine: Engine) -> None:
    cfg = engine.config("true")
    engine.run(cfg)
    with pytest.raises(RuntimeFailure, match="not running"):
        conmon.exec_process(cfg.id, ["true"], paths=engine.paths)


def test_limits_in_cgroup_and_inside(engine: Engine) -> None:
    cfg = engine.config(
        "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; sleep 300",
        memory=64 * 1024 * 1024, pids_limit=50, cpus=0.5,
    )  # fmt: skip
    engine.create_start(cfg)
    limits = cgroups.read_limits(cfg.cgroup_path)
    assert limits.memory_limit == 64 * 1024 * 1024
    assert limits.pids_max == 50
    assert (limits.cpu_quota_us, limits.cpu_period_us) == (50_000, 100_000)
    deadline = time.monotonic() + 10
    while len(engine.output(cfg).splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.output(cfg).splitlines() == [str(64 * 1024 * 1024), "50"]
    conmon.delete(cfg.id, paths=engine.paths)
    assert cgroups.cgroup_dirs(cfg.cgroup_path) == []


def _cap_eff(out: str) -> int:
    line = next(line for line in out.splitlines() if line.startswith("CapEff:"))
    return int(line.split()[1], 16)


CAP_NET_RAW = 13


def test_default_caps_include_net_raw_and_cap_drop_removes_it(engine: Engine) -> None:
    script = "grep -E 'CapEff|Seccomp:' /proc/self/status"
    _, default_out = engine.run(engine.config("sh", "-c", script))
    _, dropped_out = engine.run(engine.config("sh", "-c", script, cap_drop=("NET_RAW",)))
    _, privileged_out = engine.run(engine.config("sh", "-c", script, privileged=True))
    assert "Seccomp:\t2" in default_out  # filter mode: the default profile is loaded
    assert "Seccomp:\t0" in privileged_out
    default, dropped = _cap_eff(default_out), _cap_eff(dropped_out)
    assert bin(default).count("1") == 14
    assert default & (1 << CAP_NET_RAW)
    assert not dropped & (1 << CAP_NET_RAW)
    assert dropped == default & ~(1 << CAP_NET_RAW)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("1000:1000", "1000 1000 1000"),
        ("app", "1000 1000 1000 50"),
        ("app:staff", "1000 50 50"),
        ("0", "0 0 0"),
    ],
)
def test_user_by_number_and_name(engine: Engine, user: str, expected: str) -> None:
    code, out = engine.run(engine.config("sh", "-c", "echo $(id -u) $(id -g) $(id -G)", user=user))
    assert (code, out) == (0, expected)


def test_unknown_user_fails_clearly_and_leaves_nothing(engine: Engine) -> None:
    cfg = engine.config("true", user="nosuch")
    with pytest.raises(RuntimeFailure, match="unable to find user 'nosuch'"):
        engine.create_start(cfg)
    assert conmon.list_ids(paths=engine.paths) == []


def test_read_only_rootfs_refuses_writes(engine: Engine) -> None:
    code, out = engine.run(engine.config("sh", "-c", "touch /etc/x && echo wrote", read_only=True))
    assert code != 0
    assert "Read-only file system" in out
    code, out = engine.run(engine.config("sh", "-c", "touch /tmp/x && echo wrote"))
    assert (code, out) == (0, "wrote")
    (engine.rootfs / "tmp" / "x").unlink()


def test_hostname_and_etc_files(engine: Engine) -> None:
    cfg = engine.config(
        "sh", "-c", "hostname; cat /etc/hostname; grep db /etc/hosts; grep nameserver /etc/resolv.conf",
        hostname="web-1", dns=("192.0.2.53",), extra_hosts=({"hostname": "db", "address": "192.0.2.10"},),
    )  # fmt: skip
    code, out = engine.run(cfg)
    assert code == 0
    assert out.splitlines() == ["web-1", "web-1", "192.0.2.10\tdb", "nameserver 192.0.2.53"]


def test_failed_create_leaves_no_cgroup_or_record(engine: Engine) -> None:
    cfg = engine.config("/no/such/binary", memory=32 * 1024 * 1024)
    engine.made.append(cfg.id)
    with pytest.raises(RuntimeFailure, match=r"(?i)no such file or directory"):  # runc and crun
        conmon.create(cfg, engine.bundle(cfg), paths=engine.paths)
    assert conmon.list_ids(paths=engine.paths) == []
    assert cgroups.cgroup_dirs(cfg.cgroup_path) == []
    assert cgroups.cgroup_dirs(cfg.cgroup_parent) == []
    with pytest.raises(RuntimeFailure):
        conmon.state(cfg.id, paths=engine.paths)


def test_overlay_rootfs_keeps_writes_in_upper(engine: Engine, tmp_path: Path) -> None:
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    mount_rootfs([engine.rootfs], upper, work, merged)
    try:
        code, out = engine.run(
            ContainerConfig(id=f"stk-test-{uuid.uuid4().hex[:10]}", name="ov", rootfs=merged,
                            args=("sh", "-c", "echo data > /written && cat /written"))
        )  # fmt: skip
        assert (code, out) == (0, "data")
        assert (upper / "written").read_text() == "data\n"
        assert not (engine.rootfs / "written").exists()  # the lower layer is untouched
    finally:
        for cid in engine.made:
            conmon.delete(cid, paths=engine.paths)
        unmount_rootfs(merged)
