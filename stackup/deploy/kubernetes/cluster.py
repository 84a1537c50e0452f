"""The API server, through the official client: server-side apply, get, list by label, delete.

Only the kinds the renderer produces are addressed, from a fixed table, so no discovery round
trips are needed and a cluster (or a test's fake API server) only has to serve those paths.
Apply is server-side (`application/apply-patch+yaml`, field manager `stackup`, `force` so a
deploy takes back fields another manager changed), as `kubectl apply --server-side` does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient  # type: ignore[import-untyped]
from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]
from urllib3.exceptions import HTTPError

from stackup.deploy.kubernetes.names import FIELD_MANAGER, owner_selector
from stackup.errors import OperationFailed


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return base + (f"/{name}" if name else "")


NAMESPACE = Kind("Namespace", "v1", "namespaces", namespaced=False)
KINDS: dict[str, Kind] = {k.kind: k for k in (
    # the order `down` deletes in: what runs first, then what it uses
    Kind("Deployment", "apps/v1", "deployments"),
    Kind("StatefulSet", "apps/v1", "statefulsets"),
    Kind("Service", "v1", "services"),
    Kind("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
    Kind("ConfigMap", "v1", "configmaps"),
    Kind("Secret", "v1", "secrets"),
    Kind("PersistentVolumeClaim", "v1", "persistentvolumeclaims"),
)}


def ref(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


class Cluster:
    """One namespace of one cluster, addressed through a configured `ApiClient`."""

    def __init__(self, api: ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    @classmethod
    def from_kubeconfig(cls, namespace: str, context: str | None = None) -> Cluster:
        """The client `kubectl` would use: kubeconfig (with `--context`), else in-cluster config."""
        from kubernetes import config  # type: ignore[import-untyped]

        # the client reads $KUBECONFIG once, at import; read it per call as kubectl does
        files = os.environ.get("KUBECONFIG") or None
        try:
            api = config.new_client_from_config(config_file=files, context=context)
        except config.ConfigException as err:
            if context is not None:
                raise OperationFailed("kubeconfig", f"{err}; check --context") from err
            try:
                config.load_incluster_config()
            except config.ConfigException:
                raise OperationFailed("kubeconfig", f"{err}; set KUBECONFIG or --context") from err
            api = ApiClient()
        return cls(api, namespace)

    def _call(self, method: str, path: str, what: str, *, query: list[tuple[str, str]] | None = None,
              body: Any = None, content_type: str = "application/json") -> Any:
        try:
            response = self.api.call_api(
                path, method, query_params=query or [], body=body,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
            )
        except ApiException as err:
            if err.status == 404 and method in ("GET", "DELETE"):
                return None
            detail = f"{method} {path}: {err.status} {err.reason}: {_message(err)}"
            raise OperationFailed(what, detail) from err
        except (OSError, HTTPError) as err:  # refused, DNS, TLS, timeouts (urllib3 wraps most)
            raise OperationFailed(what, f"cannot reach the API server: {err}") from err
        data = response.data
        return json.loads(data) if data else None

    def apply(self, manifest: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        kind = KINDS.get(manifest["kind"], NAMESPACE)
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        query += [("dryRun", "All")] if dry_run else []
        path = kind.path(self.namespace, manifest["metadata"]["name"])
        result: dict[str, Any] = self._call("PATCH", path, ref(manifest), query=query, body=manifest,
                                            content_type="application/apply-patch+yaml")
        return result

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        path = KINDS[kind].path(self.namespace, name)
        found: dict[str, Any] | None = self._call("GET", path, f"{kind}/{name}")
        return found

    def owned(self, project: str) -> list[dict[str, Any]]:
        """Every object of the kinds we render that carries the project's ownership labels."""
        out: list[dict[str, Any]] = []
        for kind in KINDS.values():
            listing = self._call("GET", kind.path(self.namespace), kind.kind,
                                 query=[("labelSelector", owner_selector(project))])
            for item in (listing or {}).get("items", []):
                out.append({**item, "kind": kind.kind, "apiVersion": kind.api_version})
        return out

    def delete(self, kind: str, name: str, dry_run: bool = False) -> None:
        query = [("propagationPolicy", "Background")] + ([("dryRun", "All")] if dry_run else [])
        self._call("DELETE", KINDS[kind].path(self.namespace, name), f"{kind}/{name}", query=query)

    def ensure_namespace(self, labels: dict[str, str], dry_run: bool = False) -> bool:
        """Create the namespace if missing (returns True then). `down` never deletes namespaces."""
        if self._call("GET", NAMESPACE.path(None, self.namespace), f"Namespace/{self.namespace}") is not None:
            return False
        metadata = {"name": self.namespace, "labels": labels}
        manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
        self.apply(manifest, dry_run)
        return True


def _message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body).get("message", err.body))
    except (TypeError, ValueError):
        return str(err.body)
