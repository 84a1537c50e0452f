"""`Stack.watch` over `--runtime docker` (no tree sync there: writes through `copy_to`, deletes
through an `rm -rf` exec) on the real local dockerd: creates, edits, deletes, a new directory,
and a `sync+restart` restarting the container."""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker.errors
import pytest

from stackup.api import Stack
from stackup.dev.report import EventKind, WatchEvent
from stackup.errors import RuntimeFailure
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker._docker import cleanup_project, runtime_env

pytestmark = pytest.mark.docker
DEADLINE_S = 30.0

COMPOSE = """
services:
  web:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "echo up >> /tmp/starts; exec sleep 3600"]
    develop:
      watch:
        - {path: ./src, target: /app, action: sync, ignore: ["*.log"]}
        - {path: ./conf, target: /etc/app, action: sync+restart}
"""


APPLETS = ("sh", "cat", "rm", "sleep", "echo", "ls", "mkdir")
"""What the test's own image has (deletes need `rm`: the shared busybox image of the Docker
tests may lack it, which the sync reports as an error, as it should)."""


def _image(rt: DockerRuntime, tmp: Path, applets: tuple[str, ...] = APPLETS) -> str:
    """A busybox image of this test's own, imported into dockerd (removed by the fixture)."""
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is needed to make the test image"
    root = tmp / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        (root / d).mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in applets:
        (root / "bin" / applet).symlink_to("busybox")
    archive = tmp / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname=".")
    repository = f"stackup-test/watch-docker-{uuid.uuid4().hex[:8]}"
    rt.api.import_image(src=str(archive), repository=repository, tag="latest",
                        changes=["ENV PATH=/bin"])  # fmt: skip
    shutil.rmtree(root)
    return f"{repository}:latest"


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def docker_stack(
    tmp_path: Path, applets: tuple[str, ...] = APPLETS, compose: str = COMPOSE
) -> Iterator[Stack]:
    """A stack on the local dockerd in a fresh directory; its project and images (the base and
    what the stack built, tagged `$BUILT`) removed however the test ends."""
    rt = DockerRuntime.from_env(runtime_env())
    name = f"wd{uuid.uuid4().hex[:10]}"
    image = _image(rt, tmp_path, applets)
    built = f"stackup-test/watch-docker-built-{uuid.uuid4().hex[:8]}:latest"
    try:
        text = compose.replace("$IMAGE", image).replace("$BUILT", built)
        (tmp_path / "compose.yaml").write_text(text)
        for dockerfile in tmp_path.glob("*/Dockerfile"):
            dockerfile.write_text(dockerfile.read_text().replace("$IMAGE", image))
        stack = Stack.load(project_name=name, working_dir=tmp_path, runtime="docker")
        try:
            yield stack
        finally:
            stack.close()
            cleanup_project(rt, name)
    finally:
        for ref in (built, image):
            with contextlib.suppress(docker.errors.NotFound):
                rt.api.remove_image(ref, force=True)
        rt.close()


@contextmanager
def watching(stack: Stack) -> Iterator[list[WatchEvent]]:
    events: list[WatchEvent] = []
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            stack.watch(on_event=events.append, stop=stop)
        except BaseException as exc:  # reported below, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        _until(lambda: bool(failure) or any(e.kind is EventKind.WATCHING for e in events), "watching")
        assert not failure, failure
        yield events
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def _cat(stack: Stack, path: str) -> bytes | None:
    try:
        result = stack.exec("web", ["cat", path])
    except RuntimeFailure:  # not running: being restarted
        return None
    return result.stdout if result.exit_code == 0 else None


def test_sync_and_restart_over_docker(tmp_path: Path) -> None:
    src, conf = tmp_path / "src", tmp_path / "conf"
    (src / "old").mkdir(parents=True)
    (src / "old" / "gone.txt").write_text("bye")
    conf.mkdir()
    with docker_stack(tmp_path) as stack, watching(stack) as events:
        (src / "main.py").write_text("v1")
        _until(lambda: _cat(stack, "/app/main.py") == b"v1", "a create")
        (src / "main.py").write_text("v2")
        _until(lambda: _cat(stack, "/app/main.py") == b"v2", "an edit")
        (src / "pkg" / "sub").mkdir(parents=True)
        (src / "pkg" / "sub" / "mod.py").write_text("mod")
        _until(lambda: _cat(stack, "/app/pkg/sub/mod.py") == b"mod", "a new directory's file")
        (src / "old" / "gone.txt").write_text("bye")
        _until(lambda: _cat(stack, "/app/old/gone.txt") == b"bye", "a file to delete")
        (src / "old" / "gone.txt").unlink()
        _until(lambda: _cat(stack, "/app/old/gone.txt") is None, "a delete")
        (src / "debug.log").write_text("ignored")
        (src / "marker").write_text("m")
        _until(lambda: _cat(stack, "/app/marker") == b"m", "the marker")
        assert _cat(stack, "/app/debug.log") is None
        assert _cat(stack, "/tmp/starts") == b"up\n"
        (conf / "app.conf").write_text("debug=1")
        _until(lambda: _cat(stack, "/tmp/starts") == b"up\nup\n", "a restart")
        assert _cat(stack, "/etc/app/app.conf") == b"debug=1"
        assert any(e.kind is EventKind.RESTARTED and "restarted" in e.message for e in events), events
        assert not [e for e in events if e.kind is EventKind.ERROR], [str(e) for e in events]


def test_a_delete_the_image_cannot_do_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "conf").mkdir()
    with docker_stack(tmp_path, tuple(a for a in APPLETS if a != "rm")) as stack, watching(stack) as events:
        (src / "a.txt").write_text("a")
        _until(lambda: _cat(stack, "/app/a.txt") == b"a", "a create")
        count = len(events)
        (src / "a.txt").unlink()
        _until(lambda: any(e.kind is EventKind.ERROR for e in events[count:]), "an error")
        error = next(e for e in events[count:] if e.kind is EventKind.ERROR)
        assert "could not delete /app/a.txt" in error.message and "need an `rm`" in error.message, error
        assert _cat(stack, "/app/a.txt") == b"a"


REBUILD = """
services:
  web:
    build: ./web
    image: $BUILT
    init: true
    develop:
      watch:
        - {path: ./web, action: rebuild}
"""


def test_rebuild_over_docker_swaps_only_a_new_container_that_starts(tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "app.txt").write_text("one")
    (web / "Dockerfile").write_text('FROM $IMAGE\nCOPY app.txt /app.txt\nCMD ["sleep", "3600"]\n')
    with docker_stack(tmp_path, compose=REBUILD) as stack:
        stack.build(["web"])
        with watching(stack) as events:
            assert _cat(stack, "/app.txt") == b"one"
            good = (web / "Dockerfile").read_text()
            count = len(events)
            (web / "app.txt").write_text("two")
            _until(lambda: any(e.kind is EventKind.REBUILT for e in events[count:]), "a rebuild")
            event = next(e for e in events[count:] if e.kind is EventKind.REBUILT)
            assert "new container running, swapped" in event.message, event
            assert _cat(stack, "/app.txt") == b"two"
            serving = stack.container("web").id
            count = len(events)
            crash = '["sh", "-c", "echo boom >&2; exit 4"]'
            (web / "Dockerfile").write_text(good.replace('["sleep", "3600"]', crash))
            _until(lambda: any(e.kind is EventKind.ERROR for e in events[count:]), "a failed swap")
            error = next(e for e in events[count:] if e.kind is EventKind.ERROR)
            assert "exited with code 4" in error.message and "boom" in error.detail, (error, error.detail)
            assert stack.container("web").id == serving
            assert _cat(stack, "/app.txt") == b"two"
            assert [c.name for c in stack.ps(oneoff=True)] == [stack.container("web").name]
