"""`NativeRuntime` as a `Backend` on the real engine: what it reports and the container verbs.

Also the daemon's regression: an engine started from a directory that is deleted afterwards
still creates, execs into and removes containers (conmon used to inherit the dead directory and
fail every create), and a failing create carries conmon's or the runtime's own words.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.base import (
    ContainerState,
    HealthcheckSpec,
    OutputStream,
    RuntimeEvent,
)
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.images.testimage import ensure_busybox_image
from stackup.runtime.labels import PROJECT
from stackup.runtime.native.launcher import ensure_engine
from stackup.runtime.native.ops import runtime_event
from stackup.runtime.native.runtime import NativeRuntime, healthcheck_request
from stackup.runtime.wire.imageconfig import HealthConfig
from stackup.runtime.wire.models import ContainerCreate, ExecRequest
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.runfiles import log_path
from tests.e2e._engine import TEST_IMAGE_REF, Engine, running_engine, wait_for

pytestmark = pytest.mark.engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path / "root") as handle:
        yield handle


@pytest.fixture
def runtime(engine: Engine) -> NativeRuntime:
    return NativeRuntime(engine.client)


def test_container_info_carries_times_ports_addresses_and_command(
    engine: Engine, runtime: NativeRuntime
) -> None:
    network = engine.network("net")
    record = engine.run(
        "web", "sleep", "300", networks=[{"network": network}],
        ports=[{"container_port": 80}], labels={PROJECT: engine.name("proj")},
    )  # fmt: skip
    info = runtime.inspect_container(record.id)
    assert info.state is ContainerState.RUNNING
    assert info.created is not None and info.started_at is not None and info.finished_at is None
    assert info.command == ("sleep", "300")
    assert [(p.container_port, p.protocol) for p in info.ports] == [(80, "tcp")]
    assert info.ports[0].host_port > 0  # the ephemeral port, resolved
    assert set(info.addresses) == {network} and info.addresses[network].count(".") == 3
    assert runtime.name == "native"


def test_kill_restart_wait_top_and_logs(engine: Engine, runtime: NativeRuntime) -> None:
    record = engine.run("verbs", "sh", "-c", "echo hello; echo oops >&2; exec sleep 300")
    wait_for(lambda: len(list(runtime.logs(record.id))) == 2, "two log lines")
    entries = list(runtime.logs(record.id))
    expected = {(OutputStream.STDOUT, "hello"), (OutputStream.STDERR, "oops")}
    assert {(e.stream, e.text) for e in entries} == expected
    assert next(iter(runtime.logs(record.id, tail=1))).time is not None
    assert any("sleep" in " ".join(row) for row in runtime.top(record.id).processes)
    runtime.restart_container(record.id, timeout_s=0)
    assert runtime.inspect_container(record.id).state is ContainerState.RUNNING
    codes: list[int] = []
    waiter = threading.Thread(target=lambda: codes.append(runtime.wait_container(record.id)))
    waiter.start()
    runtime.kill_container(record.id, "SIGKILL")
    waiter.join(30)
    assert codes == [137]
    info = runtime.inspect_container(record.id)
    assert info.state is ContainerState.EXITED and info.finished_at is not None


def test_events_are_filtered_by_project_in_the_engine(engine: Engine, runtime: NativeRuntime) -> None:
    mine, other = engine.name("mine"), engine.name("other")
    # Following from the last recorded event: nothing of this test can slip past the listener.
    last = max((e.id for e in engine.client.events(since_id=0, follow=False)), default=0)
    seen: list[RuntimeEvent] = []

    def listen() -> None:
        for event in engine.client.events(since_id=last, project=mine):
            seen.append(runtime_event(event))
            if event.action == "destroy":
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    theirs = engine.run("theirs", "true", labels={PROJECT: other})
    ours = engine.run("ours", "true", labels={PROJECT: mine})
    runtime.remove_container(theirs.id)
    runtime.remove_container(ours.id)
    listener.join(30)
    assert {e.id for e in seen} == {ours.id}
    assert {"create", "start", "destroy"} <= {e.action for e in seen}
    assert all(e.attributes[PROJECT] == mine and e.name == ours.name for e in seen)
    past = list(runtime.events(project=other, follow=False))
    assert {e.id for e in past} == {theirs.id}


def test_healthcheck_request_keeps_unset_as_inherit() -> None:
    check = HealthcheckSpec(test=("CMD", "x"), timeout_s=1.5)
    assert healthcheck_request(check) == HealthConfig(test=("CMD", "x"), timeout=1_500_000_000)
    assert healthcheck_request(HealthcheckSpec(test=("NONE",))) == HealthConfig(test=("NONE",))
    assert healthcheck_request(None) is None


def test_engine_started_from_a_deleted_directory_still_runs_containers(tmp_path: Path) -> None:
    root = tmp_path / "root"
    start_dir = tmp_path / "started-here"
    start_dir.mkdir()
    paths = EnginePaths(root)
    ensure_busybox_image(ImageStore(paths))
    previous = os.getcwd()
    os.chdir(start_dir)
    try:
        client = ensure_engine(paths)
    finally:
        os.chdir(previous)
    shutil.rmtree(start_dir)
    try:
        pid = client.info().pid
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        assert (int(Path(f"/proc/{pid}/status").read_text().split("Umask:")[1].split()[0], 8)) == 0o022
        assert os.readlink(f"/proc/{pid}/fd/0") == os.devnull
        assert os.readlink(f"/proc/{pid}/fd/2") == str(log_path(paths))
        request = ContainerCreate(name="survivor", image=TEST_IMAGE_REF, command=("sleep", "60"))
        record = client.create_container(request)
        client.start_container(record.id)
        assert client.exec(record.id, ExecRequest(args=("echo", "alive"))).stdout == "alive\n"
        client.remove_container(record.id, force=True)
        assert client.list_containers() == []
    finally:
        client.close()
        with running_engine(root):  # removes anything left and checks nothing stays behind
            pass


def test_a_failed_create_carries_the_runtimes_words(engine: Engine) -> None:
    with pytest.raises(RuntimeFailure) as failure:
        engine.run("nocmd", "/no/such/binary")
    assert "/no/such/binary" in str(failure.value)
    assert "/no/such/binary" in log_path(engine.paths).read_text()
