"""What every rendering pass shares: the project, the namespace, warnings and file contents."""

from __future__ import annotations

from dataclasses import dataclass

from stackup.deploy.kubernetes.volume_workload import VolumeWorkload
from stackup.deploy.notes import Notes
from stackup.deploy.sources import Sources
from stackup.spec.models import Project

__all__ = ["RenderContext", "VolumeWorkload"]


@dataclass
class RenderContext:
    project: Project
    namespace: str
    notes: Notes
    sources: Sources
    volume_workload: VolumeWorkload = VolumeWorkload.STATEFULSET
