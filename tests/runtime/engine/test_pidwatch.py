"""pidwatch (signal and exit through pidfds, identities checked) and the container-dir trash,
on real processes: a shell stands in for conmon (its command line names the container, it is
the parent of the "init" and exits once init does)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.runtime.engine.containers import pidwatch
from stackup.runtime.engine.containers.trash import Trash


@pytest.fixture
def fake_container(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes], int]]:
    container_id = f"pw-{uuid.uuid4().hex[:8]}"
    bundle = tmp_path / container_id
    bundle.mkdir()
    script = 'sleep 300 & echo $! > "$1/pidfile"; wait; exit 7'
    shell = subprocess.Popen(["sh", "-c", script, container_id, str(bundle)])
    (bundle / "conmon.pid").write_text(str(shell.pid))
    deadline = time.monotonic() + 10
    while not (bundle / "pidfile").exists() or not (bundle / "pidfile").read_text().strip():
        assert time.monotonic() < deadline, "the fake container did not start"
        time.sleep(0.01)
    init = int((bundle / "pidfile").read_text())
    try:
        yield container_id, bundle, shell, init
    finally:
        if shell.poll() is None:  # init is still the shell's child (at worst a zombie): its pid is ours
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, signal.SIGKILL)
            shell.kill()
        shell.wait()


def test_signal_reaches_init_and_both_exits_are_seen(
    fake_container: tuple[str, Path, subprocess.Popen[bytes], int],
) -> None:
    container_id, bundle, shell, init = fake_container
    watched = pidwatch.watch(container_id, bundle, init)
    assert watched is not None and watched.init is not None and watched.conmon is not None
    with watched:
        assert not watched.wait_init(0.05)  # alive until signalled
        assert watched.signal(signal.SIGTERM)
        assert watched.wait_init(10)
        assert watched.wait_conmon(10)
    assert shell.wait(5) == 7


def test_a_pid_file_naming_another_process_is_not_trusted(
    fake_container: tuple[str, Path, subprocess.Popen[bytes], int],
) -> None:
    container_id, bundle, _, init = fake_container
    assert pidwatch.watch("some-other-container", bundle, init) is None
    (bundle / "conmon.pid").write_text(str(os.getpid()))  # alive, but not this container's conmon
    assert pidwatch.watch(container_id, bundle, init) is None


def test_init_that_is_not_conmons_child_is_not_trusted(
    fake_container: tuple[str, Path, subprocess.Popen[bytes], int],
) -> None:
    container_id, bundle, _, _ = fake_container
    assert pidwatch.watch(container_id, bundle, os.getpid()) is None


def test_a_gone_conmon_means_nothing_left_to_wait_for(
    fake_container: tuple[str, Path, subprocess.Popen[bytes], int],
) -> None:
    container_id, bundle, shell, init = fake_container
    os.kill(init, signal.SIGKILL)
    shell.wait(10)
    watched = pidwatch.watch(container_id, bundle, init)
    assert watched is not None
    with watched:
        assert (watched.conmon, watched.init) == (None, None)
        assert watched.wait_conmon(0) and watched.wait_init(0)
        assert not watched.signal(signal.SIGTERM)


def test_trash_frees_the_path_at_once_and_deletes_later(tmp_path: Path) -> None:
    victim = tmp_path / "containers" / "abc"
    (victim / "upper" / "deep").mkdir(parents=True)
    (victim / "upper" / "deep" / "file").write_text("x")
    trash = Trash(tmp_path / "containers" / ".trash")
    trash.discard(victim)
    assert not victim.exists()
    deadline = time.monotonic() + 10
    while trash.directory.exists():  # emptied, then the directory itself removed
        assert time.monotonic() < deadline, "the trash was not emptied"
        time.sleep(0.01)
    trash.discard(tmp_path / "containers" / "missing")  # absent is fine
