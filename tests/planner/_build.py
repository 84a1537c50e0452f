"""Test helpers: real `Project`s from long-form trees, and a full up cycle on the fake runtime."""

from __future__ import annotations

import itertools
from typing import Any

from stackup.planner.conditions import WaitPolicy
from stackup.planner.execute import Outcome, execute
from stackup.planner.observed import Observed, observe
from stackup.planner.options import ReconcileOptions
from stackup.planner.plan import Plan
from stackup.planner.reconcile import reconcile
from stackup.runtime.fake import FakeRuntime
from stackup.spec.errors import SourceMap
from stackup.spec.models import Project
from stackup.spec.validate import validate_project

NO_WAIT = WaitPolicy(
    interval_s=0.0, timeout_s=1000.0, sleep=lambda _s: None, clock=itertools.count().__next__
)
"""Polls without sleeping; the clock ticks once per look, so a wait "times out" after 1000 polls."""


def project(services: dict[str, dict[str, Any]], name: str = "demo", **top: Any) -> Project:
    """A validated `Project` from long-form service definitions (what the loader produces)."""
    return validate_project({"name": name, "services": services, **top}, SourceMap())


def fake_with_images(*refs: str) -> FakeRuntime:
    fake = FakeRuntime()
    for ref in refs:
        fake.add_image(ref, f"sha256:{ref.replace(':', '').ljust(64, '0')[:64]}")
    return fake


def plan_for(proj: Project, fake: FakeRuntime, options: ReconcileOptions | None = None) -> Plan:
    return reconcile(proj, observe(fake, proj.name), options)


def up(
    proj: Project, fake: FakeRuntime, options: ReconcileOptions | None = None, parallel: int | None = None
) -> Outcome:
    """reconcile + execute, as `stackup up` does; fails the test on any failure."""
    outcome = execute(plan_for(proj, fake, options), fake, parallel=parallel, wait=NO_WAIT)
    outcome.raise_for_failures()
    return outcome


def observed(fake: FakeRuntime, name: str = "demo") -> Observed:
    return observe(fake, name)
