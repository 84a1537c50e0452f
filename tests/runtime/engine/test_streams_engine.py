"""Interactive streams on the real engine: exec sessions with and without a TTY, attach, resize.

Everything goes through `NativeRuntime` (the `Backend` the API drives) and so through the
engine's upgraded connections; a TTY session is checked from the container's side (`stty size`,
`tty`), which only a real terminal answers. Output is collected until the engine ends the
stream, so nothing here waits on a clock except the guard that turns a hang into a failure.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.base import ExecSpec, OutputStream, ProcessStream
from stackup.runtime.engine.images.testimage import TEST_IMAGE_REF
from stackup.runtime.native.runtime import NativeRuntime
from stackup.runtime.wire.models import ContainerCreate
from tests.e2e._engine import Engine, running_engine, wait_for

pytestmark = pytest.mark.engine
GUARD_S = 30.0


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path / "root") as handle:
        yield handle


@pytest.fixture
def runtime(engine: Engine) -> NativeRuntime:
    return NativeRuntime(engine.client)


def collect(stream: ProcessStream) -> dict[OutputStream, bytes]:
    """Everything the stream delivers until its end, by stream, read as a select loop would."""
    out: dict[OutputStream, bytes] = {}
    deadline = time.monotonic() + GUARD_S
    while True:
        assert time.monotonic() < deadline, f"stream did not end; so far {out}"
        if not select.select([stream], [], [], 1.0)[0]:
            continue
        chunk = stream.read()
        if chunk is None:
            return out
        out[chunk[0]] = out.get(chunk[0], b"") + chunk[1]


def read_until(stream: ProcessStream, marker: bytes) -> bytes:
    seen = b""
    deadline = time.monotonic() + GUARD_S
    while marker not in seen:
        assert time.monotonic() < deadline, f"{marker!r} never came; got {seen!r}"
        if select.select([stream], [], [], 1.0)[0]:
            chunk = stream.read()
            assert chunk is not None, f"stream ended before {marker!r}; got {seen!r}"
            seen += chunk[1]
    return seen


def test_exec_without_tty_keeps_stdout_and_stderr_apart_and_takes_stdin(
    engine: Engine, runtime: NativeRuntime
) -> None:
    record = engine.run("plain", "sleep", "300")
    spec = ExecSpec(command=("sh", "-c", "cat; echo err >&2; exit 7"), stdin=True)
    stream = runtime.exec_stream(record.id, spec)
    try:
        stream.write(b"line one\n")
        stream.write(b"x" * 200_000 + b"\n")  # more than a pipe holds: flow control both ways
        stream.close_stdin()
        out = collect(stream)
        assert stream.wait() == 7
    finally:
        stream.close()
    assert out[OutputStream.STDOUT] == b"line one\n" + b"x" * 200_000 + b"\n"
    assert out[OutputStream.STDERR] == b"err\n"


def test_exec_with_tty_has_a_terminal_of_the_asked_size_and_resizes(
    engine: Engine, runtime: NativeRuntime
) -> None:
    record = engine.run("term", "sleep", "300")
    spec = ExecSpec(command=("sh",), tty=True, stdin=True)
    stream = runtime.exec_stream(record.id, spec, size=(33, 101))
    try:
        stream.write(b"tty; stty size; echo mark-$((6*7))\n")
        first = read_until(stream, b"mark-42")
        assert b"/dev/pts/" in first
        assert b"33 101" in first
        stream.resize(44, 120)
        stream.write(b"stty size; echo mark-$((7*7))\n")
        assert b"44 120" in read_until(stream, b"mark-49")
        stream.write(b"exit 3\n")
        rest = collect(stream)
        assert set(rest) <= {OutputStream.STDOUT}  # a TTY merges everything into one stream
        assert stream.wait() == 3
    finally:
        stream.close()


def test_exec_session_of_a_dropped_client_is_killed(engine: Engine, runtime: NativeRuntime) -> None:
    record = engine.run("drop", "sleep", "300")
    stream = runtime.exec_stream(record.id, ExecSpec(command=("sleep", "1234"), stdin=True))
    wait_for(lambda: "1234" in str(runtime.top(record.id).processes), "the exec'd sleep to run")
    stream.close()
    wait_for(lambda: "1234" not in str(runtime.top(record.id).processes), "the exec'd sleep to be killed")


def test_exec_stream_errors_are_the_engines(engine: Engine, runtime: NativeRuntime) -> None:
    record = engine.client.create_container(
        ContainerCreate(name=engine.name("idle"), image=TEST_IMAGE_REF, command=("true",))
    )
    with pytest.raises(RuntimeFailure, match="not running"):
        runtime.exec_stream(record.id, ExecSpec(command=("true",)))
    with pytest.raises(NotFound):
        runtime.exec_stream("no-such-container", ExecSpec(command=("true",)))


def test_privileged_capture_goes_through_a_session(engine: Engine, runtime: NativeRuntime) -> None:
    record = engine.run("priv", "sleep", "300")
    command = ("sh", "-c", "grep CapEff /proc/self/status")
    output = runtime.exec(record.id, ExecSpec(command=command, privileged=True))
    plain = runtime.exec(record.id, ExecSpec(command=command))
    assert output.exit_code == 0 and plain.exit_code == 0
    assert output.stdout != plain.stdout  # every capability versus the default set


def test_attach_with_tty_sees_output_takes_input_and_resizes(engine: Engine, runtime: NativeRuntime) -> None:
    record = engine.run("shell", "sh", options={"tty": True, "stdin_open": True})
    stream = runtime.attach(record.id)
    try:
        stream.resize(50, 132)
        stream.write(b"stty size; echo at-$((5*5))\n")
        assert b"50 132" in read_until(stream, b"at-25")
        stream.write(b"exit 4\n")
        collect(stream)
        assert stream.wait() == 4
    finally:
        stream.close()


def test_attach_without_tty_demultiplexes_and_detaching_keeps_stdin_open(
    engine: Engine, runtime: NativeRuntime
) -> None:
    script = 'while read line; do echo "out:$line"; echo "err:$line" >&2; done; echo eof'
    record = engine.run("reader", "sh", "-c", script, options={"stdin_open": True})
    first = runtime.attach(record.id)
    try:
        first.write(b"one\n")
        seen: dict[OutputStream, bytes] = {}
        deadline = time.monotonic() + GUARD_S
        while seen.get(OutputStream.STDERR, b"").count(b"\n") < 1 or OutputStream.STDOUT not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([first], [], [], 1.0)[0]:
                chunk = first.read()
                assert chunk is not None
                seen[chunk[0]] = seen.get(chunk[0], b"") + chunk[1]
        assert seen[OutputStream.STDOUT] == b"out:one\n"
        assert seen[OutputStream.STDERR] == b"err:one\n"
    finally:
        first.close()  # detaching: stdin_open is Docker's OpenStdin without StdinOnce
    second = runtime.attach(record.id)
    try:
        second.write(b"two\n")
        assert b"out:two" in read_until(second, b"out:two")
    finally:
        second.close()
    assert runtime.inspect_container(record.id).state.value == "running"
