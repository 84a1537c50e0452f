"""The `--volume-workload` choice, apart from the rendering context so that registering the CLI's
`deploy` commands does not import the stack models (about a third of every command's start-up)."""

from __future__ import annotations

from enum import StrEnum


class VolumeWorkload(StrEnum):
    """What a service with named volumes becomes.

    StatefulSet (the default) is the Kubernetes idiom for stateful pods; Deployment (with the
    Recreate strategy, so a ReadWriteOnce claim is never attached twice during a rollout) is what
    `podman kube play` can run: Podman 4 plays Pods and Deployments but ignores StatefulSets.
    """

    STATEFULSET = "statefulset"
    DEPLOYMENT = "deployment"
