"""The engine's per-project lock: one holder at a time, waiters told who holds it, a timeout that
says so, and a holder that dies (SIGKILL) releases it because its connection closes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import ProjectBusy
from stackup.runtime.engine.projectlocks import ProjectLocks
from stackup.runtime.native.client import EngineClient
from stackup.runtime.wire.models import LockState
from tests.e2e._engine import Engine, running_engine, wait_for

pytestmark = pytest.mark.engine

_HOLDER = """
import sys
from pathlib import Path
from stackup.runtime.native.client import EngineClient
with EngineClient(Path(sys.argv[1])) as client, client.project_lock(sys.argv[2], holder="crashing up"):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(tmp_path_factory.mktemp("lock") / "root") as handle:
        yield handle


def test_second_holder_waits_then_gets_it(engine: Engine) -> None:
    project = engine.name("p")
    waits: list[str] = []
    order: list[str] = []
    with EngineClient(engine.paths.socket) as other:
        with engine.client.project_lock(project, holder="up, pid 1"):
            second_done = threading.Event()

            def second() -> None:
                with other.project_lock(project, holder="up, pid 2", on_wait=waits.append):
                    order.append("second")
                second_done.set()

            thread = threading.Thread(target=second)
            thread.start()
            wait_for(lambda: bool(waits), "the second client to be told it waits")
            order.append("first")
        thread.join(timeout=30)
        assert second_done.is_set()
    assert waits == ["up, pid 1"]
    assert order == ["first", "second"]


def test_a_finished_block_hands_the_lock_over_at_once(engine: Engine) -> None:
    """Leaving the block releases explicitly: the next client is never told to wait (it would be
    during the grace period the engine gives a client that vanished)."""
    project = engine.name("h")
    waits: list[str] = []
    with EngineClient(engine.paths.socket) as other:
        for _ in range(3):
            with engine.client.project_lock(project, holder="up"):
                pass
            with other.project_lock(project, holder="down", on_wait=waits.append):
                pass
    assert waits == []


def test_timeout_names_the_holder(engine: Engine) -> None:
    project = engine.name("q")
    with (
        EngineClient(engine.paths.socket) as other,
        engine.client.project_lock(project, holder="down, pid 7"),
    ):
        with (
            pytest.raises(ProjectBusy, match=r"down, pid 7.*try again") as caught,
            other.project_lock(project, timeout_s=0.5),
        ):
            pass
        assert caught.value.holder == "down, pid 7"
    with engine.client.project_lock(project, timeout_s=5):  # released on leaving the block
        pass


def test_killed_holder_releases_the_lock(engine: Engine) -> None:
    project = engine.name("r")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(engine.paths.socket), project],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
            with pytest.raises(ProjectBusy), engine.client.project_lock(project, timeout_s=0.5):
                pass
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            with engine.client.project_lock(project, timeout_s=20):
                pass
        finally:
            proc.kill()


def test_release_waits_for_the_dead_clients_requests() -> None:
    """A request the holder began (a `stop`) still runs after it died: the next holder gets the
    lock only once that request has finished."""

    async def scenario() -> list[str]:
        locks, order = ProjectLocks(), []
        first = locks.hold("p", "up, pid 1")
        assert (await anext(first)).state is LockState.HELD
        request = locks.inflight.begin()  # e.g. DELETE /containers/web, still being served
        await first.aclose()  # the client died

        async def second() -> None:
            async for status in locks.hold("p", "up, pid 2"):
                if status.state is LockState.HELD:
                    order.append("second holds")
                    return

        waiter = asyncio.create_task(second())
        await asyncio.sleep(0.2)
        order.append("request ends")
        locks.inflight.end(request)
        await asyncio.wait_for(waiter, 5)
        return order

    assert asyncio.run(scenario()) == ["request ends", "second holds"]


def test_explicit_release_takes_the_holders_token_only() -> None:
    """`release` needs the token of the current hold; the hold's own later close (the client's
    connection) then leaves the lock alone, whoever holds it by then."""

    async def scenario() -> None:
        locks = ProjectLocks()
        first = locks.hold("p", "up, pid 1")
        held = await anext(first)
        assert held.state is LockState.HELD and held.token
        assert not locks.release("p", "not-the-token")
        assert not locks.release("p", "t\u00f6ken")  # not ASCII: refused, not a TypeError (a 500)
        assert not locks.release("other", held.token)
        assert locks.release("p", held.token)
        assert not locks.release("p", held.token)  # given back already
        second = locks.hold("p", "up, pid 2")
        assert (await anext(second)).state is LockState.HELD  # no waiting line: it was free
        await first.aclose()  # the first client's connection closes afterwards
        await asyncio.sleep(0)
        assert locks.holder("p") == "up, pid 2"
        await second.aclose()
        while locks.holder("p") is not None:  # the dead-client path: grace, then released
            await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(scenario(), 10))
