"""Named volumes -> PersistentVolumeClaims; configs -> ConfigMaps; secrets -> Secrets.

File content is read at render time (the cluster has no access to the developer's files), and
external ones are referenced by name and never rendered: stackup does not own them.
"""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client as k8s  # type: ignore[import-untyped]

from stackup.deploy.kubernetes.container import file_key
from stackup.deploy.kubernetes.context import RenderContext
from stackup.deploy.kubernetes.names import dns_label
from stackup.deploy.kubernetes.workloads import meta

DEFAULT_CLAIM_SIZE = "1Gi"


def claims(ctx: RenderContext) -> list[Any]:
    out = []
    for key, volume in ctx.project.volumes.items():
        if volume.external:
            continue
        if volume.driver:
            ctx.notes.unmapped(("volumes", key, "driver"), "the cluster's default StorageClass is used")
        opts = dict(volume.driver_opts)
        size = opts.pop("size", DEFAULT_CLAIM_SIZE)
        for opt in opts:
            ctx.notes.unmapped(("volumes", key, "driver_opts", opt))
        out.append(k8s.V1PersistentVolumeClaim(
            api_version="v1", kind="PersistentVolumeClaim",
            metadata=meta(ctx, dns_label(volume.name or key), annotations=dict(volume.labels)),
            spec=k8s.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=k8s.V1VolumeResourceRequirements(requests={"storage": size}),
            ),
        ))
    return out


def config_maps(ctx: RenderContext) -> list[Any]:
    out = []
    for key, config in ctx.project.configs.items():
        if config.external:
            continue
        content = ctx.sources.content("configs", key, config)
        if content is None:
            continue
        data: dict[str, Any] = {}
        try:
            data["data"] = {file_key(key): content.decode()}
        except UnicodeDecodeError:
            data["binary_data"] = {file_key(key): base64.b64encode(content).decode()}
        out.append(k8s.V1ConfigMap(api_version="v1", kind="ConfigMap",
                                   metadata=meta(ctx, dns_label(config.name or key),
                                                 annotations=dict(config.labels)), **data))
    return out


def secrets(ctx: RenderContext) -> list[Any]:
    out = []
    for key, secret in ctx.project.secrets.items():
        if secret.external:
            continue
        if secret.driver:
            ctx.notes.unmapped(("secrets", key, "driver"))
        content = ctx.sources.content("secrets", key, secret)
        if content is None:
            continue
        out.append(k8s.V1Secret(api_version="v1", kind="Secret", type="Opaque",
                                metadata=meta(ctx, dns_label(secret.name or key),
                                              annotations=dict(secret.labels)),
                                data={file_key(key): base64.b64encode(content).decode()}))
    return out
