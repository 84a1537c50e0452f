"""`stackup pull` / `push` for a project, and the refresh phase of `up`.

Which services `pull` fetches follows Docker Compose: services without `image:` are skipped (they
are built), as are `pull_policy: never` and `build`, and `missing`/`if_not_present` images that
are already here; everything else is pulled, each distinct reference once, in parallel. `push`
uploads the images of services that are built (`build:` and `image:`), as Compose does: a stack
never pushes `postgres:16` back to Docker Hub.

`up` pulls images that are present but due (`always`, a stale `daily`, `--pull always`) before it
plans containers, so a container is recreated only when the pull brought a different image,
exactly as the image-id comparison of `reconcile` decides; missing images are pulled inside the
plan, in parallel with everything that does not need them.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from stackup.errors import RuntimeFailure, StackupError
from stackup.planner.graph import dependencies, with_dependencies
from stackup.planner.plan import Operation, OpKind, Plan
from stackup.planner.pulls import PullPolicy, image_key, local_keys, parse_policy

if TYPE_CHECKING:
    from stackup.planner.execute import Outcome
    from stackup.planner.observed import Observed
    from stackup.planner.reporter import Reporter
    from stackup.runtime.base import Backend, TransferProgress
    from stackup.spec.models import Project

DEFAULT_PARALLEL_PULLS = 4


@dataclass(frozen=True, slots=True)
class Transfer:
    """One image of a `pull` or `push`: done (`image`: id or pushed digest), skipped, or failed."""

    ref: str
    services: tuple[str, ...]
    image: str = ""
    skipped: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _selected(project: Project, services: Sequence[str], include_deps: bool) -> list[str]:
    unknown = sorted(set(services) - set(project.services))
    if unknown:
        raise RuntimeFailure(f"no such service: {', '.join(unknown)}")
    chosen = set(services) or set(project.services)
    if include_deps and services:
        chosen = with_dependencies(dependencies(project), chosen)
    return sorted(chosen)


def pull_plan(project: Project, services: Sequence[str], local: set[str], *,
              include_deps: bool = False) -> list[Transfer]:
    """What `pull` will do per distinct image (to do: neither `skipped` nor `image` set)."""
    by_ref: dict[str, list[str]] = {}
    skipped: list[Transfer] = []
    for name in _selected(project, services, include_deps):
        service = project.services[name]
        if not service.image:
            skipped.append(Transfer(name, (name,), skipped="no image to pull (built)"))
            continue
        policy, _period = parse_policy(service.pull_policy, service.pull_refresh_after)
        if policy in (PullPolicy.NEVER, PullPolicy.BUILD):
            skipped.append(Transfer(service.image, (name,), skipped=f"pull_policy: {service.pull_policy}"))
        elif policy is PullPolicy.MISSING and image_key(service.image) in local:
            skipped.append(Transfer(service.image, (name,), skipped="already present"))
        else:
            by_ref.setdefault(service.image, []).append(name)
    return [*(Transfer(ref, tuple(names)) for ref, names in sorted(by_ref.items())), *skipped]


def pull_services(backend: Backend, project: Project, services: Sequence[str] = (), *,
                  include_deps: bool = False, ignore_failures: bool = False,
                  progress: TransferProgress | None = None,
                  parallel: int = DEFAULT_PARALLEL_PULLS) -> list[Transfer]:
    """Pull the images of `services` (all by default) in parallel; raises on a failure unless
    `ignore_failures` (then failed entries carry their `error`)."""
    local = local_keys(r for image in backend.list_images() for r in image.refs)
    planned = pull_plan(project, services, local, include_deps=include_deps)
    todo = [t for t in planned if not t.skipped]

    def one(item: Transfer) -> Transfer:
        platform = project.services[item.services[0]].platform
        try:
            info = backend.pull_image(item.ref, platform=platform, progress=progress)
        except StackupError as exc:
            return Transfer(item.ref, item.services, error=str(exc))
        return Transfer(item.ref, item.services, image=info.id)

    with ThreadPoolExecutor(max(1, min(parallel, len(todo) or 1)), thread_name_prefix="stackup-pull") as pool:
        done = list(pool.map(one, todo))
    failed = [t for t in done if t.error]
    if failed and not ignore_failures:
        raise RuntimeFailure("\n".join(t.error for t in failed))
    return [*done, *(t for t in planned if t.skipped)]


def push_services(backend: Backend, project: Project, services: Sequence[str] = (), *,
                  ignore_failures: bool = False, progress: TransferProgress | None = None) -> list[Transfer]:
    """Push the built images (`build:` and `image:`) of `services`, one after the other."""
    out: list[Transfer] = []
    seen: set[str] = set()
    for name in _selected(project, services, include_deps=False):
        service = project.services[name]
        if service.build is None or not service.image:
            reason = "not built here (no build: and image:)"
            out.append(Transfer(service.image or name, (name,), skipped=reason))
            continue
        if service.image in seen:
            continue
        seen.add(service.image)
        try:
            digest = backend.push_image(service.image, progress=progress)
        except StackupError as exc:
            if not ignore_failures:
                raise
            out.append(Transfer(service.image, (name,), error=str(exc)))
            continue
        out.append(Transfer(service.image, (name,), image=digest))
    return out


def refresh_ops(plan: Plan, observed: Observed) -> list[Operation]:
    """The plan's pulls of images that are already here (due by policy): `up` runs them first."""
    local = local_keys(observed.images)
    return [op for op in plan if op.kind is OpKind.PULL and image_key(op.name) in local]


def run_refresh(ops: Sequence[Operation], project: str, backend: Backend, reporter: Reporter | None,
                parallel: int | None) -> Outcome:
    from stackup.planner.execute import execute

    graph = nx.DiGraph()
    graph.add_nodes_from((op.id, {"op": op}) for op in ops)
    return execute(Plan(project, graph), backend, reporter, parallel=parallel)
