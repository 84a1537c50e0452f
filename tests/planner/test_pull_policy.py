"""`pull_policy`, `up --pull` and periodic refreshes, decided by the pure planner."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from stackup.errors import PlanError
from stackup.planner.observed import Observed
from stackup.planner.options import ReconcileOptions
from stackup.planner.plan import OpKind
from stackup.planner.pulls import PullPolicy, image_key, parse_policy
from stackup.planner.reconcile import reconcile
from stackup.runtime.base import PullSpec
from tests.planner._build import project

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
ID = "sha256:" + "a" * 64


def _pulls(policy: str | None, *, present: bool = True, pulled: datetime | None = None,
           image: str = "registry.local:5000/team/app:1", **options: object) -> list[str]:
    service: dict[str, object] = {"image": image}
    if policy:
        service["pull_policy"] = policy
    proj = project({"app": service})
    seen = Observed(project="demo", images={"registry.local:5000/team/app:1": ID} if present else {},
                    pulled={"registry.local:5000/team/app:1": pulled} if pulled else {})
    plan = reconcile(proj, seen, replace(ReconcileOptions(now=NOW), **options))  # type: ignore[arg-type]
    return [f"{op.name} ({op.cause})" for op in plan if op.kind is OpKind.PULL]


@pytest.mark.parametrize(("text", "expected"), [
    (None, (PullPolicy.MISSING, None)), ("if_not_present", (PullPolicy.MISSING, None)),
    ("daily", (PullPolicy.PERIODIC, timedelta(days=1))), ("weekly", (PullPolicy.PERIODIC, timedelta(days=7))),
    ("every_12h", (PullPolicy.PERIODIC, timedelta(hours=12))),
    ("every_1h30m", (PullPolicy.PERIODIC, timedelta(minutes=90))),
])
def test_policies_parse(text: str | None, expected: tuple[PullPolicy, timedelta | None]) -> None:
    assert parse_policy(text) == expected


def test_missing_pulls_only_an_absent_image() -> None:
    assert _pulls("missing") == []
    assert _pulls("missing", present=False) == ["registry.local:5000/team/app:1 (not found)"]


def test_always_pulls_unless_this_up_just_did() -> None:
    assert _pulls("always") == ["registry.local:5000/team/app:1 (pull_policy: always)"]
    assert _pulls("always", refreshed=frozenset({"registry.local:5000/team/app:1"})) == []


def test_never_refuses_an_absent_image_with_what_to_do() -> None:
    assert _pulls("never") == []
    with pytest.raises(PlanError, match="not present and pull_policy is never; pull it first"):
        _pulls("never", present=False)


def test_daily_pulls_when_the_last_pull_is_a_day_old() -> None:
    assert _pulls("daily", pulled=NOW - timedelta(hours=3)) == []
    assert _pulls("daily", pulled=NOW - timedelta(days=2)) == [
        "registry.local:5000/team/app:1 (pull_policy: daily (last pulled 2026-01-08 12:00))"]
    assert _pulls("every_1h", pulled=NOW - timedelta(hours=2)) != []
    assert _pulls("weekly", pulled=NOW - timedelta(days=2)) == []
    assert _pulls("daily") == []  # imported or built here: nothing to refresh it from


def test_up_pull_overrides_the_stack_file() -> None:
    assert _pulls("never", pull="always") == ["registry.local:5000/team/app:1 (--pull: always)"]
    assert _pulls("always", pull="missing") == []


def test_references_match_in_their_canonical_form() -> None:
    assert image_key("busybox") == image_key("docker.io/library/busybox:latest")
    proj = project({"app": {"image": "busybox"}})
    seen = Observed(project="demo", images={"busybox:latest": ID})
    assert [op for op in reconcile(proj, seen, ReconcileOptions(now=NOW)) if op.kind is OpKind.PULL] == []


def test_the_pull_carries_the_platform() -> None:
    proj = project({"app": {"image": "team/app:1", "platform": "linux/arm64"}})
    plan = reconcile(proj, Observed(project="demo"), ReconcileOptions(now=NOW))
    pulls = [op for op in plan if op.kind is OpKind.PULL]
    assert [op.spec for op in pulls] == [PullSpec("team/app:1", "linux/arm64")]
