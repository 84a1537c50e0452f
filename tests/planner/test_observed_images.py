"""Image references as the planner looks them up: a stack file's `nginx` is the store's `nginx:latest`."""

from __future__ import annotations

from stackup.planner.observed import Observed
from stackup.runtime.base import ImageInfo


def test_latest_answers_to_the_untagged_name() -> None:
    observed = Observed.build(
        "demo",
        images=[
            ImageInfo("sha256:aa", ("demo-app:latest", "demo-migrate:latest")),
            ImageInfo("sha256:bb", ("busybox:1",)),
        ],
    )
    assert observed.images["demo-app"] == observed.images["demo-app:latest"] == "sha256:aa"
    assert observed.images["demo-migrate"] == "sha256:aa"
    assert "busybox" not in observed.images and observed.images["busybox:1"] == "sha256:bb"


def test_an_explicit_untagged_ref_wins_over_the_alias() -> None:
    observed = Observed.build(
        "demo", images=[ImageInfo("sha256:aa", ("x:latest",)), ImageInfo("sha256:bb", ("x",))]
    )
    assert observed.images["x"] == "sha256:bb"
