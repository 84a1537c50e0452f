"""Object names and the ownership labels every rendered object carries.

Compose service names may hold `_`, `.` or capitals; Kubernetes names are DNS-1123 labels. A
Service is named after the compose service so other pods reach it by the same name they used
under Compose; when the name has to change, the renderer says so.
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "stackup"
PROJECT = "stackup.project"
SERVICE = "stackup.service"
NETWORK_PREFIX = "stackup.network."
FIELD_MANAGER = "stackup"

_INVALID = re.compile(r"[^a-z0-9-]+")


def dns_label(name: str, limit: int = 63) -> str:
    """`My_Service.1` -> `my-service-1`; long names keep a hash suffix so they stay distinct."""
    label = _INVALID.sub("-", name.lower()).strip("-") or "x"
    if len(label) > limit:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        label = label[: limit - 9].rstrip("-") + "-" + digest
    return label


def owner_labels(project: str, service: str | None = None) -> dict[str, str]:
    """What `--down` and `plan` select on: only objects with these labels are ever touched."""
    labels = {MANAGED_BY: MANAGER, PROJECT: dns_label(project)}
    if service is not None:
        labels[SERVICE] = dns_label(service)
    return labels


def selector(project: str, service: str) -> dict[str, str]:
    return {PROJECT: dns_label(project), SERVICE: dns_label(service)}


def owner_selector(project: str) -> str:
    """The label selector for everything a project owns, as the API's `labelSelector` wants it."""
    return f"{MANAGED_BY}={MANAGER},{PROJECT}={dns_label(project)}"


def network_label(network: str) -> str:
    """Pod label marking membership of a stack network (NetworkPolicies select on it)."""
    return NETWORK_PREFIX + dns_label(network, limit=63 - len(NETWORK_PREFIX))
