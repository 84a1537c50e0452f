"""The real engine: `stackupd` started on demand on a temporary root, driven through EngineClient.

Each test gets its own root (`stackup_root`), and the fixture removes every container, stops the
engine and checks by hand that no runc container, mount or cgroup of that root is left, even
when the test failed half-way or killed the engine itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from stackup.errors import NotFound, RuntimeFailure, StackupError
from stackup.runtime import labels
from stackup.runtime.engine import linux
from stackup.runtime.engine.containers import cgroups, conmon, ociruntime
from stackup.runtime.engine.containers.config import default_cgroup_parent
from stackup.runtime.engine.images.testimage import build_busybox_rootfs
from stackup.runtime.native.client import EngineClient
from stackup.runtime.native.launcher import engine_status, ensure_engine, read_pid, stop_engine
from stackup.runtime.wire.models import ContainerCreate, ExecRequest, MountKind, MountRequest
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerStatus

pytestmark = pytest.mark.engine

IMAGE = "stackup-test/busybox:latest"
RSS_LIMIT = 80 * 1024 * 1024


@dataclass
class Engine:
    paths: EnginePaths
    client: EngineClient

    def run(self, name: str, *command: str, **options: object) -> str:
        """Create and start a container from the busybox image; return its id."""
        record = self.client.create_container(
            ContainerCreate(name=name, image=IMAGE, command=command, options=dict(options))
        )
        self.client.start_container(record.id)
        return record.id


def _mounts_under(root: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


def _runc_ids(paths: EnginePaths) -> list[str]:
    return conmon.list_ids(paths=paths)


def _scrub(paths: EnginePaths) -> None:
    """Whatever the engine did not clean up, by hand; the engine is already stopped."""
    for container_id in _runc_ids(paths):
        with contextlib.suppress(StackupError):
            conmon.delete(container_id, paths=paths)
    for point in reversed(_mounts_under(paths.root)):
        with contextlib.suppress(OSError):
            linux.umount(point)
    with contextlib.suppress(OSError):
        cgroups.remove_if_empty(default_cgroup_parent(paths.root))


@pytest.fixture
def engine(stackup_root: Path, tmp_path: Path) -> Iterator[Engine]:
    paths = EnginePaths.from_env()
    handle = Engine(paths, ensure_engine(paths))
    try:
        rootfs = build_busybox_rootfs(tmp_path / "busybox-rootfs")
        handle.client.import_image(rootfs, IMAGE)
        yield handle
    finally:
        handle.client.close()  # a test may have replaced the client after restarting the engine
        try:
            with ensure_engine(paths) as cleaner:  # the test may have killed it
                for record in cleaner.list_containers():
                    cleaner.remove_container(record.id, force=True)
        finally:
            stop_engine(paths)
            _scrub(paths)


def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_engine_serves_a_root_only_socket_in_little_memory(engine: Engine) -> None:
    engine.client.ping()
    assert stat.S_IMODE(engine.paths.socket.stat().st_mode) == 0o600
    version = engine.client.version()
    assert "runc" in version.runc
    expected = ociruntime.configured(engine.paths)
    assert version.oci_runtime.startswith(f"{expected.name} version")
    assert "/containers/{ref}/logs" in engine.client.openapi()["paths"]
    status = engine_status(engine.paths)
    assert status.running and status.info is not None
    assert status.info.images == 1
    assert status.info.oci_runtime == version.oci_runtime
    assert status.info.rss_bytes < RSS_LIMIT, f"engine RSS {status.info.rss_bytes / 2**20:.1f} MiB"


def test_a_second_engine_on_the_same_root_refuses(engine: Engine) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "stackup.runtime.engine.server", "--root", str(engine.paths.root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode != 0
    assert "another engine already runs" in second.stderr
    engine.client.ping()


def test_container_lifecycle(engine: Engine) -> None:
    client = engine.client
    created = client.create_container(
        ContainerCreate(
            name="life-sleeper",
            image=IMAGE,
            command=("sleep", "300"),
            labels={labels.PROJECT: "life", labels.SERVICE: "sleeper", labels.CONTAINER_NUMBER: "1"},
            options={"init": True},
        )
    )
    assert created.status is ContainerStatus.CREATED
    assert (created.project, created.service, created.number) == ("life", "sleeper", 1)
    assert client.start_container("life-sleeper").status is ContainerStatus.RUNNING
    assert [c.name for c in client.list_containers(project="life")] == ["life-sleeper"]
    assert client.list_containers(labels={labels.PROJECT: "other"}) == []

    result = client.exec("life-sleeper", ExecRequest(args=("sh", "-c", "echo out; echo err >&2; exit 3")))
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    commands = [row[-1] for row in client.top("life-sleeper").processes]
    assert "/dev/init -- sleep 300" in commands and "sleep 300" in commands

    stopped = client.stop_container("life-sleeper", timeout_s=5)
    assert stopped.status is ContainerStatus.EXITED
    assert stopped.exit_code == 128 + signal.SIGTERM  # catatonit forwards SIGTERM to sleep
    assert _mounts_under(engine.paths.containers) == []  # an exited container pins no mount
    assert client.restart_container("life-sleeper", timeout_s=1).status is ContainerStatus.RUNNING
    assert client.inspect_container("life-sleeper").restart_count == 0  # only policies count

    with pytest.raises(RuntimeFailure, match="running"):
        client.remove_container("life-sleeper")
    client.remove_container("life-sleeper", force=True)
    with pytest.raises(NotFound):
        client.inspect_container("life-sleeper")
    assert _runc_ids(engine.paths) == []


def test_logs_wait_and_follow(engine: Engine) -> None:
    client = engine.client
    engine.run("echoer", "sh", "-c", "echo one; echo two; echo three >&2; exit 4")
    assert client.wait_container("echoer", timeout_s=30) == 4
    lines = list(client.logs("echoer"))
    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "one"),
        ("stdout", "two"),
        ("stderr", "three"),
    ]
    assert [line.text for line in client.logs("echoer", tail=1)] == ["three"]
    assert list(client.logs("echoer", since=lines[-1].time + timedelta(seconds=1))) == []

    engine.run("ticker", "sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.3; done")
    followed = [line.text for line in client.logs("ticker", follow=True)]
    assert followed == ["tick 1", "tick 2", "tick 3"]
    assert client.inspect_container("ticker").exit_code == 0


def test_events_record_the_lifecycle(engine: Engine) -> None:
    container_id = engine.run("evented", "true")
    engine.client.wait_container(container_id, timeout_s=30)
    actions = [e.action for e in engine.client.events(since_id=0, follow=False) if e.actor == container_id]
    assert actions == ["create", "start", "die"]


def test_killed_engine_leaves_containers_running_and_exits_recorded(engine: Engine) -> None:
    sleeper = engine.run("survivor", "sleep", "300", init=True)
    short = engine.run("short-lived", "sh", "-c", "sleep 1; exit 7")
    pid = read_pid(engine.paths)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _until(lambda: read_pid(engine.paths) is None)

    assert conmon.state(sleeper, paths=engine.paths).status is conmon.Status.RUNNING
    _until(lambda: conmon.RuntimeDirs.of(engine.paths).exit_file(short).exists())

    engine.client.close()
    engine.client = ensure_engine(engine.paths)  # a new engine re-adopts both
    survivor = engine.client.inspect_container("survivor")
    assert survivor.status is ContainerStatus.RUNNING
    finished = engine.client.inspect_container("short-lived")
    assert (finished.status, finished.exit_code) == (ContainerStatus.EXITED, 7)
    result = engine.client.exec("survivor", ExecRequest(args=("echo", "still here")))
    assert result.stdout == "still here\n"


def test_volumes_survive_their_containers(engine: Engine) -> None:
    client = engine.client
    client.create_volume("keep", labels={labels.PROJECT: "vols"})
    record = client.create_container(
        ContainerCreate(
            name="writer",
            image=IMAGE,
            command=("sh", "-c", "echo kept > /data/file"),
            mounts=(MountRequest(kind=MountKind.VOLUME, target="/data", source="keep"),),
        )
    )
    client.start_container(record.id)
    assert client.wait_container(record.id, timeout_s=30) == 0
    with pytest.raises(RuntimeFailure, match="in use by writer"):
        client.remove_volume("keep")
    client.remove_container(record.id)

    volume = client.inspect_volume("keep")
    assert Path(volume.mountpoint, "file").read_text() == "kept\n"
    assert [v.name for v in client.list_volumes(labels={labels.PROJECT: "vols"})] == ["keep"]
    client.remove_volume("keep")
    assert not Path(volume.mountpoint).exists()


def test_shutdown_leaves_nothing_behind(engine: Engine) -> None:
    container_id = engine.run("brief", "sleep", "300")
    engine.client.stop_container(container_id, timeout_s=1)
    engine.client.remove_container(container_id)
    assert stop_engine(engine.paths)
    assert not engine.paths.socket.exists()
    assert read_pid(engine.paths) is None
    assert _mounts_under(engine.paths.root) == []
    assert _runc_ids(engine.paths) == []
    assert not engine_status(engine.paths).running


def test_errors_cross_the_socket_as_stackup_errors(engine: Engine) -> None:
    client = engine.client
    with pytest.raises(NotFound):
        client.inspect_container("missing")
    with pytest.raises(NotFound, match="not found"):
        client.create_container(ContainerCreate(name="x", image="no/such:image", command=("true",)))
    client.create_container(ContainerCreate(name="dup", image=IMAGE, command=("true",)))
    with pytest.raises(RuntimeFailure, match="already in use"):
        client.create_container(ContainerCreate(name="dup", image=IMAGE, command=("true",)))
    transport = httpx.HTTPTransport(uds=str(engine.paths.socket))
    with httpx.Client(transport=transport, base_url="http://stackupd") as raw:
        # options are typed on the wire: an unknown one is refused by the engine too, not only
        # by the client's model, and a refused create leaves no record
        body = {"name": "y", "image": IMAGE, "command": ["true"], "options": {"bogus": 1}}
        refused = raw.post("/containers", json=body)
        assert refused.status_code == 400 and "bogus" in refused.text
        assert [c.name for c in client.list_containers()] == ["dup"]
        bad = raw.get("/containers/dup/logs", params={"tail": "many"})
        assert bad.status_code == 400
        assert bad.json()["kind"] == "invalid"
