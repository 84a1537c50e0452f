"""`translate`: a loaded project -> typed Kubernetes objects plus located warnings (pure: no cluster).

Output order is fixed (storage, config, workloads, policies; services in name order) and every
object is serialised by the client's own `sanitize_for_serialization`, so the YAML is stable
enough to golden-test byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient  # type: ignore[import-untyped]

from stackup.deploy.kubernetes.context import RenderContext, VolumeWorkload
from stackup.deploy.kubernetes.coverage import check_service
from stackup.deploy.kubernetes.names import dns_label
from stackup.deploy.kubernetes.policies import network_policies
from stackup.deploy.kubernetes.storage import claims, config_maps, secrets
from stackup.deploy.kubernetes.workloads import note_dependencies, one_shot_services, workload
from stackup.deploy.notes import Notes
from stackup.deploy.sources import Sources
from stackup.spec.errors import Problem, SourceMap
from stackup.spec.models import Project


@dataclass(frozen=True)
class Rendering:
    """The objects (typed client models) and what could not be expressed, with where it was written."""

    objects: tuple[Any, ...]
    warnings: tuple[Problem, ...]

    def manifests(self) -> list[dict[str, Any]]:
        api = ApiClient()
        return [api.sanitize_for_serialization(obj) for obj in self.objects]

    def to_yaml(self) -> str:
        return manifests_yaml(self.manifests())


def manifests_yaml(manifests: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream, as `kubectl apply -f` and `podman kube play` read it."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.explicit_start = True
    buf = io.StringIO()
    yaml.dump_all(manifests, buf)
    return buf.getvalue()


def default_namespace(project: Project) -> str:
    return dns_label(project.name)


def translate(project: Project, namespace: str | None = None, source_map: SourceMap | None = None, *,
              environment: Mapping[str, str] | None = None,
              referenced_files: Mapping[str, bytes] | None = None,
              volume_workload: VolumeWorkload = VolumeWorkload.STATEFULSET) -> Rendering:
    notes = Notes(source_map, "kubernetes")
    sources = Sources(notes, environment, referenced_files)
    ctx = RenderContext(project, namespace or default_namespace(project), notes, sources, volume_workload)
    one_shots = one_shot_services(ctx)
    services = {name: project.services[name] for name in sorted(project.services)}
    for name, service in services.items():
        check_service(notes, name, service)
    objects: list[Any] = [*claims(ctx), *config_maps(ctx), *secrets(ctx)]
    long_running = {n: s for n, s in services.items() if n not in one_shots}
    for name, service in long_running.items():
        objects.extend(workload(ctx, name, service, one_shots))
    for name in sorted(one_shots):
        note_dependencies(ctx, name, services[name], one_shots)
    objects.extend(network_policies(ctx, long_running))
    return Rendering(tuple(objects), notes.sorted())


def render(project: Project, namespace: str | None = None, source_map: SourceMap | None = None,
           **kwargs: Any) -> list[dict[str, Any]]:
    """The manifests as plain dicts (what the API server receives)."""
    return translate(project, namespace, source_map, **kwargs).manifests()
