"""DockerRuntime's `ContainerOps` against the real daemon: exec (captured, streamed, with a TTY),
attach, logs, kill / restart / wait, top and events."""

from __future__ import annotations

import select
import threading
import time
from datetime import UTC, datetime

import pytest

from stackup.runtime.base import ContainerState, ExecSpec, OutputStream, ProcessStream
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker._docker import PODMAN
from tests.runtime.docker.test_runtime import spec

pytestmark = pytest.mark.docker


def drain(stream: ProcessStream) -> list[tuple[OutputStream, bytes]]:
    chunks = []
    while (chunk := stream.read()) is not None:
        chunks.append(chunk)
    return chunks


def started(rt: DockerRuntime, project: str, service: str = "web", **fields: object) -> str:
    info = rt.create_container(spec(project, service, **fields))  # type: ignore[arg-type]
    rt.start_container(info.id)
    return info.id


def test_exec_captured(docker_rt: DockerRuntime, project_name: str) -> None:
    cid = started(docker_rt, project_name)
    out = docker_rt.exec(
        cid,
        ExecSpec(
            ("sh", "-c", 'echo "$X in $(pwd) as $(id -u)"; echo oops >&2; exit 3'),
            user="1000",
            working_dir="/tmp",
            environment={"X": "hello"},
        ),
    )
    assert (out.exit_code, out.stdout, out.stderr) == (3, b"hello in /tmp as 1000\n", b"oops\n")


def test_exec_stream_demultiplexes_and_takes_stdin(docker_rt: DockerRuntime, project_name: str) -> None:
    cid = started(docker_rt, project_name)
    stream = docker_rt.exec_stream(cid, ExecSpec(("sh", "-c", "cat; echo done >&2; exit 2"), stdin=True))
    try:
        stream.write(b"line one\n")
        stream.close_stdin()
        chunks = drain(stream)
        assert stream.wait() == 2
    finally:
        stream.close()
    out = b"".join(data for kind, data in chunks if kind is OutputStream.STDOUT)
    err = b"".join(data for kind, data in chunks if kind is OutputStream.STDERR)
    assert (out, err) == (b"line one\n", b"done\n")


def test_exec_stream_with_a_tty_resizes(docker_rt: DockerRuntime, project_name: str) -> None:
    cid = started(docker_rt, project_name)
    stream = docker_rt.exec_stream(cid, ExecSpec(("sh",), tty=True, stdin=True))
    try:
        stream.resize(33, 77)
        stream.write(b"stty size; exit 5\n")
        readable, _, _ = select.select([stream], [], [], 10)
        assert readable, "a TTY exec wrote nothing within 10s"
        chunks = drain(stream)
        assert stream.wait() == 5
    finally:
        stream.close()
    assert {kind for kind, _ in chunks} == {OutputStream.STDOUT}  # a TTY has one stream
    assert b"33 77" in b"".join(data for _, data in chunks)


def test_attach_to_the_main_process(docker_rt: DockerRuntime, project_name: str) -> None:
    info = docker_rt.create_container(
        spec(project_name, command=("sh", "-c", "read line; echo got $line; exit 9"), stdin_open=True)
    )
    stream = docker_rt.attach(info.id)
    try:
        docker_rt.start_container(info.id)
        stream.write(b"ping\n")
        chunks = drain(stream)
        assert stream.wait() == 9
    finally:
        stream.close()
    assert b"".join(d for _, d in chunks) == b"got ping\n"


def test_logs_streams_times_tail_since_follow(docker_rt: DockerRuntime, project_name: str) -> None:
    cid = started(
        docker_rt,
        project_name,
        command=("sh", "-c", "echo one; echo two >&2; echo three; sleep 1; echo four"),
    )
    assert docker_rt.wait_container(cid) == 0
    entries = list(docker_rt.logs(cid))
    # the daemon reads stdout and stderr separately: order holds within a stream, not across
    assert [e.text for e in entries if e.stream is OutputStream.STDOUT] == ["one", "three", "four"]
    assert [e.text for e in entries if e.stream is OutputStream.STDERR] == ["two"]
    assert entries[-1].text == "four"
    assert all(e.time is not None for e in entries)
    assert [e.text for e in docker_rt.logs(cid, tail=1)] == ["four"]
    later = entries[3].time
    assert later is not None
    assert [e.text for e in docker_rt.logs(cid, since=later)] == ["four"]

    follow = started(
        docker_rt, project_name, "follow", command=("sh", "-c", "echo a; sleep 1; echo b"), init=False
    )
    seen = [e.text for e in docker_rt.logs(follow, follow=True)]  # ends when the container exits
    assert seen == ["a", "b"]


def test_logs_of_a_tty_container(docker_rt: DockerRuntime, project_name: str) -> None:
    cid = started(docker_rt, project_name, command=("sh", "-c", "echo tty-line"), tty=True)
    docker_rt.wait_container(cid)
    assert [(e.stream, e.text) for e in docker_rt.logs(cid)] == [(OutputStream.STDOUT, "tty-line")]


def test_kill_restart_wait_top(docker_rt: DockerRuntime, project_name: str) -> None:
    cid = started(docker_rt, project_name)
    top = docker_rt.top(cid)
    assert "PID" in top.titles and any("sleep 600" in " ".join(row) for row in top.processes)
    before = docker_rt.inspect_container(cid).started_at
    docker_rt.restart_container(cid, timeout_s=1)
    after = docker_rt.inspect_container(cid)
    assert after.state is ContainerState.RUNNING and before is not None and after.started_at is not None
    assert after.started_at > before
    codes: list[int] = []
    waiter = threading.Thread(target=lambda: codes.append(docker_rt.wait_container(cid)))
    waiter.start()
    time.sleep(0.3)
    docker_rt.kill_container(cid, "SIGKILL")
    waiter.join(30)
    assert codes == [137]


def test_events_of_one_project(docker_rt: DockerRuntime, project_name: str) -> None:
    since = datetime.now(UTC)
    cid = started(docker_rt, project_name)
    docker_rt.stop_container(cid, timeout_s=1)
    events = [e for e in docker_rt.events(project=project_name, follow=False) if e.time >= since]
    actions = [e.action for e in events if e.id == cid]
    assert {"create", "start", "die"} <= set(actions), actions
    assert PODMAN or "stop" in actions  # Podman's compatible events have no `stop`
    assert all(e.attributes.get("com.docker.compose.project") == project_name for e in events)
    assert events[0].name == f"{project_name}-web-1"

    live = docker_rt.events(project=project_name, follow=True)
    got: list[str] = []

    def consume() -> None:
        for event in live:
            got.append(event.action)
            if event.action == "start":
                break

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.5)
    docker_rt.start_container(cid)
    reader.join(30)
    live.close()  # type: ignore[attr-defined]
    assert "start" in got
