"""`Stack.watch` end to end on the real engine: files edited, created, deleted and renamed on the
host show up in the container; sync+restart restarts, sync+exec runs; ignores hold; a stack-file
change is applied and an invalid one changes nothing."""

from __future__ import annotations

import shutil
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stackup.api import Stack
from stackup.dev.report import EventKind, WatchEvent

IMAGE = "stackup-test/busybox:latest"
pytestmark = pytest.mark.engine
DEADLINE_S = 20.0


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Session:
    def __init__(self, stack: Stack, services: tuple[str, ...] = ()) -> None:
        self.stack = stack
        self.events: list[WatchEvent] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(services,), daemon=True)

    def _run(self, services: tuple[str, ...]) -> None:
        try:
            self.stack.watch(services, on_event=self.events.append, stop=self.stop)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    def wait_for(self, kind: EventKind, after: int = 0) -> WatchEvent:
        def seen() -> bool:
            if self.error is not None:
                raise self.error
            return any(e.kind is kind for e in self.events[after:])
        _until(seen, f"a {kind} event (got {[str(e) for e in self.events]})")
        return next(e for e in self.events[after:] if e.kind is kind)


@contextmanager
def watching(directory: Path, compose: str, services: tuple[str, ...] = ()) -> Iterator[Session]:
    (directory / "compose.yaml").write_text(compose.replace("$IMAGE", IMAGE))
    stack = Stack.load(project_name=f"w{uuid.uuid4().hex[:8]}")
    session = Session(stack, services)
    session.thread.start()
    try:
        session.wait_for(EventKind.WATCHING)
        yield session
    finally:
        session.stop.set()
        session.thread.join(timeout=30)
        stack.down(volumes=True)
        stack.close()
    assert not session.thread.is_alive()


def _cat(stack: Stack, service: str, path: str) -> bytes | None:
    result = stack.exec(service, ["cat", path])
    return result.stdout if result.exit_code == 0 else None


SYNC = """
services:
  web:
    image: $IMAGE
    init: true
    command: ["sleep", "3600"]
    develop:
      watch:
        - path: ./src
          target: /app
          action: sync
          ignore: ["*.log", "build/"]
"""


def test_sync_edits_creates_deletes_renames_and_ignores(project_dir: Path) -> None:
    src = project_dir / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "main.py").write_text("v1")
    (src / "pkg" / "mod.py").write_text("mod")
    with watching(project_dir, SYNC) as session:
        stack = session.stack
        (src / "main.py").write_text("v2")
        _until(lambda: _cat(stack, "web", "/app/main.py") == b"v2", "an edit")
        assert any(e.kind is EventKind.SYNCED and "synced 1 file" in e.message for e in session.events)
        (src / "new.txt").write_text("created")
        _until(lambda: _cat(stack, "web", "/app/new.txt") == b"created", "a create")
        (src / "new.txt").unlink()
        _until(lambda: _cat(stack, "web", "/app/new.txt") is None, "a delete")
        (src / "pkg" / "mod.py").write_text("mod2")
        _until(lambda: _cat(stack, "web", "/app/pkg/mod.py") == b"mod2", "an edit in a subdirectory")
        (src / "pkg").rename(src / "lib")
        _until(lambda: _cat(stack, "web", "/app/lib/mod.py") == b"mod2", "a renamed directory's files")
        _until(lambda: _cat(stack, "web", "/app/pkg/mod.py") is None, "the old directory gone")
        # editor-style save: write a temporary file, rename it over the real one
        (src / ".main.py.tmp").write_text("v3")
        (src / ".main.py.tmp").rename(src / "main.py")
        _until(lambda: _cat(stack, "web", "/app/main.py") == b"v3", "a write-then-rename save")
        (src / "debug.log").write_text("ignored")
        (src / "build").mkdir()
        (src / "build" / "out.o").write_text("ignored")
        (src / ".main.py.swp").write_text("vim")
        (src / "last.txt").write_text("marker")
        _until(lambda: _cat(stack, "web", "/app/last.txt") == b"marker", "the marker file")
        for ignored in ("/app/debug.log", "/app/build/out.o", "/app/.main.py.swp"):
            assert _cat(stack, "web", ignored) is None, ignored
        owner = stack.exec("web", ["stat", "-c", "%u:%g %a", "/app/main.py"]).stdout.decode().strip()
        assert owner == "0:0 644"


def test_directories_made_next_to_an_ignored_one_are_watched(project_dir: Path) -> None:
    """`src/build/` exists, so `src` is watched flat (`watchset.py`): a directory made in it
    later is watched once the set is re-planned, and files written into it afterwards arrive."""
    src = project_dir / "src"
    (src / "build" / "obj").mkdir(parents=True)
    (src / "main.py").write_text("v1")
    with watching(project_dir, SYNC) as session:
        stack = session.stack
        (src / "fresh").mkdir()
        (src / "fresh" / "early.txt").write_text("early")
        _until(lambda: _cat(stack, "web", "/app/fresh/early.txt") == b"early", "a new directory's file")
        (src / "fresh" / "deep").mkdir()
        (src / "fresh" / "deep" / "late.txt").write_text("late")
        _until(lambda: _cat(stack, "web", "/app/fresh/deep/late.txt") == b"late", "a file written later")
        (src / "build" / "obj" / "x.o").write_text("ignored")
        (src / "main.py").write_text("v2")
        _until(lambda: _cat(stack, "web", "/app/main.py") == b"v2", "an edit")
        assert _cat(stack, "web", "/app/build/obj/x.o") is None


def test_changes_while_stopped_arrive_when_the_container_starts(project_dir: Path) -> None:
    src = project_dir / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    with watching(project_dir, SYNC) as session:
        stack = session.stack
        stack.stop(["web"], timeout=1)
        count = len(session.events)
        (src / "a.txt").write_text("changed while stopped")
        session.wait_for(EventKind.SYNCED, after=count)
        stack.start(["web"])
        assert _cat(stack, "web", "/app/a.txt") == b"changed while stopped"


def test_sync_restart_and_sync_exec(project_dir: Path) -> None:
    src = project_dir / "src"
    src.mkdir()
    (src / "conf").write_text("one")
    (src / "hook.txt").write_text("h1")
    compose = """
services:
  web:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "echo started with $$(cat /app/conf 2>/dev/null); exec sleep 3600"]
    develop:
      watch:
        - {path: ./src/conf, target: /app/conf, action: sync+restart}
        - path: ./src/hook.txt
          target: /app/hook.txt
          action: sync+exec
          exec:
            command: ["sh", "-c", "cat /app/hook.txt > /tmp/hook-ran; echo $$MARK >> /tmp/hook-ran"]
            environment: {MARK: from-exec}
"""
    with watching(project_dir, compose) as session:
        stack = session.stack
        (src / "conf").write_text("two")
        event = session.wait_for(EventKind.RESTARTED)
        assert "restarted" in event.message
        _until(lambda: any("started with two" in e.text for e in stack.logs("web")), "the restarted process")
        (src / "hook.txt").write_text("h2")
        session.wait_for(EventKind.EXECUTED)
        assert _cat(stack, "web", "/tmp/hook-ran") == b"h2from-exec\n"


def test_stack_file_change_is_applied_and_an_invalid_one_changes_nothing(project_dir: Path) -> None:
    (project_dir / "src").mkdir()
    command = 'command: ["sleep", "3600"]'
    base = SYNC.replace(command, command + '\n    environment: {DEBUG: "0"}')
    with watching(project_dir, base) as session:
        stack = session.stack
        before = stack.container("web").id
        count = len(session.events)
        changed = base.replace('DEBUG: "0"', 'DEBUG: "1"')
        (project_dir / "compose.yaml").write_text(changed.replace("$IMAGE", IMAGE))
        event = session.wait_for(EventKind.APPLIED, after=count)
        assert 'environment.DEBUG: "0" -> "1"' in event.detail
        assert stack.exec("web", ["sh", "-c", "echo $DEBUG"]).stdout == b"1\n"
        recreated = stack.container("web").id
        assert recreated != before
        count = len(session.events)
        (project_dir / "compose.yaml").write_text(base.replace("image:", "imagee:").replace("$IMAGE", IMAGE))
        event = session.wait_for(EventKind.ERROR, after=count)
        assert "compose.yaml:" in event.detail and "imagee" in event.detail
        assert stack.container("web").id == recreated
        # still watching with the last good rules
        (project_dir / "src" / "after.txt").write_text("still")
        _until(lambda: _cat(stack, "web", "/app/after.txt") == b"still", "a sync after the bad edit")


def test_explain(project_dir: Path) -> None:
    (project_dir / "src").mkdir()
    (project_dir / "compose.yaml").write_text(SYNC.replace("$IMAGE", IMAGE))
    with Stack.load(project_name=f"w{uuid.uuid4().hex[:8]}") as stack:
        lines = stack.explain_watch(project_dir / "src" / "x.log")
        assert lines == [
            f"services.web.develop.watch[0] (path {project_dir / 'src'}, action sync): ignored by "
            "'*.log' (services.web.develop.watch[0].ignore[0])"
        ]
        ok = stack.explain_watch(project_dir / "src" / "a" / "b.py")
        assert ok[0].endswith("sync (services.web.develop.watch[0]) -> web:/app/a/b.py")
    shutil.rmtree(project_dir / "src")


REBUILD = """
services:
  api:
    build: ./api
    image: watch-rebuild-$SUFFIX:latest
    init: true
    develop:
      watch:
        - {path: ./api, action: rebuild}
  client:
    image: $IMAGE
    init: true
    command: ["sh", "-c", "echo client up; exec sleep 3600"]
    depends_on:
      api: {condition: service_started, restart: true}
"""


def test_rebuild_picks_up_a_change_and_a_failed_build_keeps_the_old_container(project_dir: Path) -> None:
    api = project_dir / "api"
    api.mkdir()
    (api / "app.txt").write_text("one")
    (api / "Dockerfile").write_text(
        f"FROM {IMAGE}\nRUN echo deps > /deps.txt\nCOPY app.txt /app.txt\nCMD [\"sleep\", \"3600\"]\n"
    )
    compose = REBUILD.replace("$SUFFIX", uuid.uuid4().hex[:8])
    (project_dir / "compose.yaml").write_text(compose.replace("$IMAGE", IMAGE))
    with Stack.load(project_name=f"w{uuid.uuid4().hex[:8]}") as builder:
        builder.build(["api"])  # the first build, so `up` finds the image
    with watching(project_dir, compose) as session:
        stack = session.stack
        assert _cat(stack, "api", "/app.txt") == b"one"
        client_started = stack.container("client").started_at
        (api / "app.txt").write_text("two")
        event = session.wait_for(EventKind.REBUILT)
        assert "rebuilt" in event.message and "steps cached" in event.message, event.message
        assert "restarted client" in event.message
        assert _cat(stack, "api", "/app.txt") == b"two"
        assert stack.container("client").started_at != client_started
        serving = stack.container("api").id
        count = len(session.events)
        (api / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo broken; exit 3\nCOPY app.txt /app.txt\n")
        event = session.wait_for(EventKind.ERROR, after=count)
        assert "exit" in str(event) or "exit" in event.detail, str(event)
        assert stack.container("api").id == serving
        assert _cat(stack, "api", "/app.txt") == b"two"


SWAP = """
services:
  web:
    build: {context: ./web, tags: ["stackup-test/watch-swap-$SUFFIX:latest"]}
    image: stackup-test/watch-swap-$SUFFIX:latest
    ports: ["127.0.0.1::8080"]
    develop:
      watch:
        - path: ./web
          action: rebuild
"""

SERVE = 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


def test_a_new_container_that_fails_leaves_the_old_one_serving(project_dir: Path) -> None:
    web = project_dir / "web"
    web.mkdir()
    (web / "index.html").write_text("one")
    dockerfile = f"FROM {IMAGE}\nCOPY index.html /www/index.html\n"
    (web / "Dockerfile").write_text(dockerfile + SERVE)
    compose = SWAP.replace("$SUFFIX", uuid.uuid4().hex[:8])
    (project_dir / "compose.yaml").write_text(compose)
    with Stack.load(project_name=f"w{uuid.uuid4().hex[:8]}") as builder:
        builder.build(["web"])
    with watching(project_dir, compose) as session:
        stack = session.stack
        url = stack.url("web", 8080, path="/index.html")
        assert _get(url) == b"one"
        count = len(session.events)
        (web / "index.html").write_text("two")
        event = session.wait_for(EventKind.REBUILT, after=count)
        assert "new container answering on 8080, swapped" in event.message, event.message
        url = stack.url("web", 8080, path="/index.html")
        assert _get(url) == b"two"
        serving = stack.container("web").id
        failures = [
            ('CMD ["sh", "-c", "echo boom >&2; exit 4"]\n', "exited with code 4", "boom"),
            ("HEALTHCHECK --interval=1s --retries=1 CMD false\n" + SERVE, "unhealthy", ""),
        ]
        for tail, message, output in failures:
            count = len(session.events)
            (web / "Dockerfile").write_text(dockerfile + tail)
            event = session.wait_for(EventKind.ERROR, after=count)
            assert message in event.message and output in event.detail, (str(event), event.detail)
            assert stack.container("web").id == serving  # the old container was never touched
            assert _get(url) == b"two"
            left = [c.name for c in stack.ps(oneoff=True) if c.name != stack.container("web").name]
            assert not left, f"candidate left behind: {left}"


def test_a_candidate_is_no_replica_and_down_removes_one_left_behind(project_dir: Path) -> None:
    from stackup.dev.swap import candidate_spec
    from stackup.runtime.base import ContainerSpec

    (project_dir / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, '3600']\n"
        "    ports: ['127.0.0.1::8080']\n"
    )
    with Stack.load(project_name=f"w{uuid.uuid4().hex[:8]}") as stack:
        try:
            stack.up()
            [spec] = [op.spec for op in stack.plan(force_recreate=True) if isinstance(op.spec, ContainerSpec)]
            candidate = stack.backend.create_container(candidate_spec(spec))
            stack.backend.start_container(candidate.id)  # as a crash mid-try would leave it
            assert [c.name for c in stack.ps()] == [stack.container("web").name]
            assert not stack.plan().has_changes, str(stack.plan())
        finally:
            stack.down(volumes=True)
        assert stack.backend.list_containers(stack.name) == []
