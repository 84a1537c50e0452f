"""Logs bounded as Docker's json-file driver bounds them, on the real engine.

A container printing numbered lines fast: with `max-size`/`max-file` the engine keeps at most
`max-file` files (rotated through conmon's control fifo), `logs` reads across them and what it
returns is a gap-free run of the newest lines; a follower that started before the rotations sees
every line exactly once. `max-file: 1` is conmon's truncation; driver `none` keeps nothing; an
unknown driver is refused at create.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers.logpolicy import log_files
from tests.e2e._engine import Engine, running_engine, wait_for

pytestmark = pytest.mark.engine

LINES = 1500
PRINT = (  # bursts of 100 lines (about 7 KiB of log), so rotations fall between and within them
    f"i=0; while [ $i -lt {LINES} ]; do echo line-$i-padding-padding-padding; i=$((i+1));"
    " [ $((i % 100)) -eq 0 ] && usleep 150000; done; sleep 3600"
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(tmp_path_factory.mktemp("logs") / "root") as handle:
        yield handle


def _numbers(texts: list[str]) -> list[int]:
    return [int(t.split("-")[1]) for t in texts if t.startswith("line-")]


def _log_path(engine: Engine, container_id: str) -> Path:
    return engine.paths.container(container_id).dir / "ctr.log"


def test_rotation_keeps_max_file_files_and_logs_reads_across_them(engine: Engine) -> None:
    options = {"log_options": {"max-size": "8k", "max-file": "3"}}
    record = engine.run("rot", "sh", "-c", PRINT, options=options)
    follower = engine.client.logs(record.id, follow=True)
    seen: list[str] = []
    for line in follower:
        seen.append(line.text)
        if line.text.startswith(f"line-{LINES - 1}-"):
            break
    assert _numbers(seen) == list(range(LINES))  # the follower lost and repeated nothing
    wait_for(lambda: len(log_files(_log_path(engine, record.id))) == 3, "three log files")
    files = log_files(_log_path(engine, record.id))
    # A file may pass max-size by what is written between two checks (one burst here).
    assert all(path.stat().st_size < 24 << 10 for path in files), [p.stat().st_size for p in files]
    kept = _numbers([line.text for line in engine.client.logs(record.id)])
    assert kept[-1] == LINES - 1
    assert kept == list(range(kept[0], LINES))  # contiguous: no line lost between the files
    assert kept[0] > 0  # the oldest were dropped
    assert _numbers([line.text for line in engine.client.logs(record.id, tail=5)]) == list(
        range(LINES - 5, LINES)
    )


def test_max_file_one_truncates_and_none_keeps_nothing(engine: Engine) -> None:
    one = engine.run("one", "sh", "-c", PRINT, options={"log_options": {"max-size": "16k"}})
    none = engine.run("none", "sh", "-c", PRINT, options={"log_driver": "none"})
    wait_for(lambda: any(t.startswith(f"line-{LINES - 1}-") for t in _texts(engine, one.id)), "the last line")
    assert len(log_files(_log_path(engine, one.id))) == 1
    assert _log_path(engine, one.id).stat().st_size <= 16 << 10
    assert engine.exec(none.id, "true").exit_code == 0
    assert list(engine.client.logs(none.id)) == []


def test_unknown_driver_is_refused(engine: Engine) -> None:
    with pytest.raises(RuntimeFailure, match="logging driver 'syslog' is not available"):
        engine.run("bad", "true", options={"log_driver": "syslog"})


def _texts(engine: Engine, container_id: str) -> list[str]:
    return [line.text for line in engine.client.logs(container_id)]
