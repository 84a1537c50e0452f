"""The exit directory's inotify watch: written and renamed-in exit files are reported by id,
other names are not, and nothing written means an empty answer after the timeout."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from stackup.runtime.engine.supervision.exitwatch import ExitWatch


def test_reports_exit_files_by_container_id(tmp_path: Path) -> None:
    exits = tmp_path / "exits"
    direct, renamed = secrets.token_hex(32), secrets.token_hex(32)
    with ExitWatch(exits) as watch:
        assert watch.wait(0.01) == set()
        (exits / direct).write_text("0")  # conmon writing the file in place
        (exits / f"{renamed}.Q1W2E3").write_text("137")  # ... or a temporary file renamed into place
        os.rename(exits / f"{renamed}.Q1W2E3", exits / renamed)
        (exits / "not-a-container").write_text("1")
        seen: set[str] = set()
        while len(seen) < 2:
            found = watch.wait(5.0)
            assert found, "no event within 5 s"
            seen |= found
        assert seen == {direct, renamed}
        assert watch.wait(0.01) == set()
