"""Watch rules as matchers: scratch files, rule ignores, the build context's .dockerignore,
include, and routing a burst to one batch per service."""

from __future__ import annotations

from pathlib import Path

import pytest
from watchfiles import Change

from stackup.dev.batching import Batcher
from stackup.dev.rules import explain, matchers_for
from stackup.dev.sync import plan_batch
from stackup.errors import UsageError
from stackup.spec.models import Service


def _service(tmp_path: Path, **rule: object) -> Service:
    return Service.model_validate({
        "image": "x",
        "build": {"context": str(tmp_path)},
        "develop": {"watch": [{"path": str(tmp_path / "src"), "target": "/app", "action": "sync", **rule}]},
    })


def test_scratch_rule_ignores_dockerignore_and_include(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("# comment\nsrc/secret.txt\n")
    [m] = matchers_for("web", _service(tmp_path, ignore=["*.log"], include=["*.py", "*.txt", "*.log"]))
    src = tmp_path / "src"
    assert m.decide(src / "a.py").counts
    assert m.decide(src / "a.py").container_path == "/app/a.py"
    assert "vim swap" in m.decide(src / ".a.py.swp").reason
    assert "version control" in m.decide(src / ".git" / "HEAD").reason
    assert m.decide(src / "x.log").reason == "ignored by '*.log' (services.web.develop.watch[0].ignore[0])"
    where = f"{tmp_path / '.dockerignore'}:2"
    assert m.decide(src / "secret.txt").reason == f"ignored by 'src/secret.txt' ({where})"
    assert m.decide(src / "notes.md").reason.startswith("not included")
    lines = explain([m], src / "x.log")
    assert lines == [f"services.web.develop.watch[0] (path {src}, action sync): ignored by '*.log' "
                     "(services.web.develop.watch[0].ignore[0])"]


def test_rules_that_cannot_work_are_refused(tmp_path: Path) -> None:
    def service(action: str) -> Service:
        return Service.model_validate(
            {"image": "x", "develop": {"watch": [{"path": str(tmp_path), "action": action}]}}
        )

    bad = service("sync")
    with pytest.raises(UsageError, match="needs a target"):
        matchers_for("web", bad)
    rebuild = service("rebuild")
    with pytest.raises(UsageError, match="needs a build section"):
        matchers_for("web", rebuild)


def test_a_burst_is_one_batch_and_a_temp_file_is_not_a_write(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    matchers = matchers_for("web", _service(tmp_path))
    for i in range(1000):
        (src / f"f{i}.py").write_text("x")
    changes = {(Change.added, str(src / f"f{i}.py")) for i in range(1000)}
    changes |= {(Change.added, str(src / "f1.py.tmp")), (Change.deleted, str(src / "f1.py.tmp"))}
    routed = Batcher(matchers).route(changes, 0.0)
    assert list(routed) == ["web"]
    batch = plan_batch(routed["web"].syncs(), routed["web"].added)
    assert len(batch.writes) == 1000 and batch.deletes == {"/app/f1.py.tmp"}


def test_an_added_directory_is_walked_and_deletes_under_a_deleted_one_collapse(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "new" / "node_modules").mkdir(parents=True)
    (src / "new" / "a.py").write_text("a")
    (src / "new" / "node_modules" / "b.js").write_text("b")
    [m] = matchers_for("web", _service(tmp_path, ignore=["**/node_modules"]))
    changes = {(Change.added, str(src / "new")), (Change.deleted, str(src / "old")),
               (Change.deleted, str(src / "old" / "x.py"))}
    pending = Batcher([m]).route(changes, 0.0)["web"]
    batch = plan_batch(pending.syncs(), pending.added)
    assert sorted(batch.writes) == ["/app/new", "/app/new/a.py"]
    assert batch.deletes == {"/app/old"}
