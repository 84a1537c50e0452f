"""The stack on an existing cluster (Kubernetes or Docker Swarm): what `Stack.render`,
`Stack.plan_cluster` and `Stack.deploy` do, over `stackup.deploy`.

Results are lines and located warnings, never printed here. Warnings go to `on_warning` as they
are found, before anything is applied, so a front end shows them first. Deploying needs no local
runtime (only `push` does), so `LazyBackend` opens it on first use: `stackup deploy` starts no
engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from stackup.deploy.kubernetes.volume_workload import VolumeWorkload
from stackup.errors import UsageError

if TYPE_CHECKING:
    from stackup.api import pulling
    from stackup.deploy.kubernetes.cluster import Cluster
    from stackup.deploy.kubernetes.render import Rendering
    from stackup.runtime.base import Backend
    from stackup.spec.loader import LoadedProject
    from stackup.spec.models import Project

__all__ = ["ClusterPlan", "DeployTarget", "Deployed", "LazyBackend", "VolumeWorkload"]

Warn = Callable[[str], None]


class DeployTarget(StrEnum):
    KUBERNETES = "kubernetes"
    SWARM = "swarm"


@dataclass(frozen=True)
class Deployed:
    """What a deploy (or `down`) did, one line per object or image, in order."""

    lines: tuple[str, ...]


@dataclass(frozen=True)
class ClusterPlan:
    """`plan --target kubernetes`: the field-by-field changes, as text; `changed` if any."""

    text: str
    changed: bool


class LazyBackend:
    """A `Backend` opened on first use (`open`); closing one never opened does nothing."""

    def __init__(self, open_: Callable[[], Backend]) -> None:
        self._open = open_
        self._backend: Backend | None = None

    def __getattr__(self, name: str) -> Any:
        if self._backend is None:
            self._backend = self._open()
        return getattr(self._backend, name)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()

    def as_backend(self) -> Backend:
        return cast("Backend", self)


def _kubernetes_only(target: DeployTarget, verb: str, why: str = "") -> None:
    if target is not DeployTarget.KUBERNETES:
        raise UsageError(f"{verb} supports --target kubernetes only{why}")


def rendering(loaded: LoadedProject, namespace: str | None, workload: VolumeWorkload,
              on_warning: Warn) -> Rendering:
    from stackup.deploy.kubernetes.render import translate

    for message in loaded.warnings:
        on_warning(message)
    result = translate(loaded.project, namespace, loaded.source_map, environment=loaded.environment,
                       referenced_files=loaded.referenced_files, volume_workload=workload)
    for problem in result.warnings:
        on_warning(str(problem))
    return result


def render_yaml(loaded: LoadedProject, target: DeployTarget, namespace: str | None,
                workload: VolumeWorkload, on_warning: Warn) -> str:
    _kubernetes_only(target, "render", " (a Swarm stack is the stack file itself)")
    return rendering(loaded, namespace, workload, on_warning).to_yaml()


def cluster(project: Project, namespace: str | None, context: str | None) -> Cluster:
    from stackup.deploy.kubernetes.cluster import Cluster
    from stackup.deploy.kubernetes.render import default_namespace

    return Cluster.from_kubeconfig(namespace or default_namespace(project), context)


def plan(loaded: LoadedProject, target: DeployTarget, *, namespace: str | None, context: str | None,
         workload: VolumeWorkload, on_warning: Warn) -> ClusterPlan:
    _kubernetes_only(target, "plan")
    from stackup.deploy.kubernetes import sync

    manifests = rendering(loaded, namespace, workload, on_warning).manifests()
    result = sync.plan(cluster(loaded.project, namespace, context), loaded.project.name, manifests)
    return ClusterPlan(str(result), bool(result))


def pushed_lines(results: Sequence[pulling.Transfer], project: Project, on_warning: Warn) -> list[str]:
    """`deploy --push`: a line per pushed image; a service built without `image:` is a warning,
    since the cluster could not pull its local name."""
    lines = []
    for item in results:
        if item.error:
            on_warning(item.error)
        elif item.skipped:
            for name in item.services:
                if project.services[name].build is not None:
                    on_warning(f"services.{name}: built here without `image:`, so nothing is pushed and the "
                               f"cluster cannot pull {item.ref!r}; name it in a registry the cluster reaches "
                               "(`image: REGISTRY/NAME:TAG`)")
        else:
            lines.append(f"pushed {item.ref} {item.image}")
    return lines


def kubernetes(loaded: LoadedProject, *, namespace: str | None, context: str | None, dry_run: bool,
               down: bool, workload: VolumeWorkload, on_warning: Warn) -> list[str]:
    from stackup.deploy.kubernetes import sync

    target = cluster(loaded.project, namespace, context)
    suffix = " (dry run)" if dry_run else ""
    if down:
        return [f"deleted {ref}{suffix}" for ref in sync.down(target, loaded.project.name, dry_run)]
    manifests = rendering(loaded, namespace, workload, on_warning).manifests()
    return [str(sync.deploy(target, loaded.project.name, manifests, dry_run)) + suffix]


def swarm(loaded: LoadedProject, *, down: bool, volumes: bool, routing_mesh: bool,
          on_warning: Warn) -> list[str]:
    import docker  # type: ignore[import-untyped]

    from stackup.deploy.swarm import SwarmDeploy, remove_stack
    from stackup.deploy.swarm_spec import SwarmOptions

    client = docker.from_env()
    try:
        if down:
            return [f"removed {line}" for line in remove_stack(client, loaded.project.name, volumes=volumes)]
        for message in loaded.warnings:
            on_warning(message)
        run = SwarmDeploy(client, loaded.project, loaded.source_map, loaded.environment,
                          loaded.referenced_files, options=SwarmOptions(routing_mesh=routing_mesh))
        try:
            actions = run.run()
        finally:
            for problem in run.warnings:
                on_warning(str(problem))
        return actions or ["no changes"]
    finally:
        client.close()
