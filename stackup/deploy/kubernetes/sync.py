"""deploy, plan and down against a cluster: the three verbs over `Cluster` and `diff`.

`deploy` applies every rendered object (server-side apply) and then prunes objects that carry
the project's labels but are no longer rendered, so the namespace converges on the stack file as
`up` does locally; `plan` shows exactly that; `down` deletes only what carries the labels.
"""

from __future__ import annotations

from typing import Any

from stackup.deploy.kubernetes.cluster import Cluster, ref
from stackup.deploy.kubernetes.diff import Action, DeployPlan, ObjectChange, plan_changes
from stackup.deploy.kubernetes.names import owner_labels

Manifest = dict[str, Any]


def current_objects(cluster: Cluster, project: str, desired: list[Manifest]) -> dict[str, Manifest]:
    """Owned objects, plus same-named objects someone else made (apply would take them over)."""
    current = {ref(obj): obj for obj in cluster.owned(project)}
    for manifest in desired:
        key = ref(manifest)
        if key not in current:
            found = cluster.get(manifest["kind"], manifest["metadata"]["name"])
            if found is not None:
                current[key] = {**found, "kind": manifest["kind"]}
    return current


def plan(cluster: Cluster, project: str, desired: list[dict[str, Any]]) -> DeployPlan:
    return plan_changes(desired, current_objects(cluster, project, desired))


def deploy(cluster: Cluster, project: str, desired: list[Manifest], dry_run: bool = False) -> DeployPlan:
    """Apply `desired`, prune what is no longer rendered; returns what was (or, dry, would be) done.

    With `dry_run` the server validates every object (`dryRun=All`) without persisting it; into
    a namespace that does not exist yet, only the namespace is validated.
    """
    changes = plan(cluster, project, desired)
    if cluster.ensure_namespace(owner_labels(project), dry_run):
        changes = DeployPlan((ObjectChange(Action.CREATE, f"Namespace/{cluster.namespace}"), *changes.items))
        if dry_run:
            # a dry run does not persist the namespace, and the API server refuses objects in a
            # namespace that does not exist (404), dry run or not: only the namespace was checked
            return changes
    for manifest in desired:
        cluster.apply(manifest, dry_run)
    for item in changes.items:
        if item.action is Action.DELETE:
            kind, name = item.ref.split("/", 1)
            cluster.delete(kind, name, dry_run)
    return changes


def down(cluster: Cluster, project: str, dry_run: bool = False) -> list[str]:
    """Delete every object carrying the project's labels (workloads first); returns their refs."""
    removed = []
    for obj in cluster.owned(project):
        cluster.delete(obj["kind"], obj["metadata"]["name"], dry_run)
        removed.append(ref(obj))
    return removed
