"""Which service keys the Kubernetes rendering honours; everything else is a located warning.

The list is explicit so a key added to the model later is reported as unsupported until someone
maps it, instead of vanishing from the manifests unnoticed.
"""

from __future__ import annotations

from stackup.deploy.notes import Notes
from stackup.spec.models import RestartKind, Service

MAPPED = frozenset({
    "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes", "tmpfs",
    "configs", "secrets", "healthcheck", "scale", "mem_limit", "mem_reservation", "cpus", "working_dir",
    "user", "privileged", "read_only", "cap_add", "cap_drop", "tty", "stdin_open", "pull_policy",
    "depends_on", "networks", "network_mode", "hostname", "extra_hosts", "dns", "dns_search", "dns_opt",
    "labels", "stop_grace_period", "sysctls", "restart", "deploy", "build", "extensions", "profiles",
})
"""Service keys translated (fully, or with their own warnings for the parts that are not)."""

DEPLOY_MAPPED = frozenset({"replicas", "resources", "labels", "update_config", "extensions"})


def check_service(notes: Notes, name: str, service: Service) -> None:
    path = ("services", name)
    for key in sorted(service.model_fields_set - MAPPED):
        notes.unmapped((*path, key))
    if service.build is not None and service.image is not None:
        notes.add((*path, "build"), f"built image must be in a registry the cluster can pull from: "
                                    f"push {service.image} (deploy --push)")
    if service.restart is not None and service.restart.kind in (RestartKind.NO, RestartKind.ON_FAILURE):
        notes.add((*path, "restart"), f"pods of a Deployment always restart; restart: {service.restart} "
                                      "is not honoured")
    if service.deploy is not None:
        for key in sorted(service.deploy.model_fields_set - DEPLOY_MAPPED):
            notes.unmapped((*path, "deploy", key))
        for level in ("limits", "reservations"):
            res = getattr(service.deploy.resources, level, None) if service.deploy.resources else None
            if res is None:
                continue
            for key in sorted(res.model_fields_set - {"cpus", "memory", "extensions"}):
                notes.unmapped((*path, "deploy", "resources", level, key))
        update = service.deploy.update_config
        if update is not None:
            for key in sorted(update.model_fields_set - {"parallelism", "order", "extensions"}):
                notes.unmapped((*path, "deploy", "update_config", key))
