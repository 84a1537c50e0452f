"""What every rendering pass shares: the project, where its keys came from, the file contents."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from stackup.deploy.notes import Notes
from stackup.spec.dotenv import parse_dotenv
from stackup.spec.models import Project, Service


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
    environment: Mapping[str, str] = field(default_factory=dict)
    """The load's interpolation environment: `configs.x.environment` / `secrets.x.environment` read it."""
    referenced_files: Mapping[str, bytes] = field(default_factory=dict)
    volume_workload: VolumeWorkload = VolumeWorkload.STATEFULSET

    def read(self, path: str) -> bytes:
        """A referenced file's content: the load's copy if it kept one, else the file itself."""
        content = self.referenced_files.get(path)
        return content if content is not None else Path(path).read_bytes()

    def service_env(self, name: str, service: Service) -> dict[str, str]:
        """env_file contents in order, then `environment` on top, as Compose merges them."""
        out: dict[str, str] = {}
        for i, env_file in enumerate(service.env_file):
            try:
                text = self.read(env_file.path).decode()
            except OSError as err:
                if env_file.required:
                    self.notes.add(("services", name, "env_file", i),
                                   f"cannot read {env_file.path}: {err.strerror}")
                continue
            out.update(parse_dotenv(text, filename=env_file.path))
        for key, value in service.environment.items():
            if value is None:
                self.notes.add(("services", name, "environment", key), "no value set; left out")
            else:
                out[key] = value
        return out
