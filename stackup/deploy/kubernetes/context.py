"""What every rendering pass shares: the project, the namespace, warnings and file contents."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stackup.deploy.notes import Notes
from stackup.deploy.sources import Sources
from stackup.spec.models import Project


class VolumeWorkload(StrEnum):
    """What a service with named volumes becomes.

    StatefulSet (the default) is the Kubernetes idiom for stateful pods; Deployment (with the
    Recreate strategy, so a ReadWriteOnce claim is never attached twice during a rollout) is what
    `podman kube play` can run: Podman 4 plays Pods and Deployments but ignores StatefulSets.
    """

    STATEFULSET = "statefulset"
    DEPLOYMENT = "deployment"


@dataclass
class RenderContext:
    project: Project
    namespace: str
    notes: Notes
    sources: Sources
    volume_workload: VolumeWorkload = VolumeWorkload.STATEFULSET
