"""deploy / plan / down through the real kubernetes client against the fake API server (conftest).

There is no Kubernetes cluster on the test machine: these check what stackup sends and how it
reads the answers (server-side apply, ownership labels, the field-by-field plan, pruning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration

from stackup.deploy.kubernetes.cluster import Cluster
from stackup.deploy.kubernetes.render import translate
from stackup.deploy.kubernetes.sync import deploy, down, plan
from stackup.errors import OperationFailed

STACK = """\
name: shop
services:
  web:
    image: stackup-bench/busybox:latest
    command: ["httpd", "-f", "-p", "80"]
    environment:
      DB_URL: {db_url}
    ports: ["8080:80"]
    configs: [site]
  db:
    image: stackup-bench/busybox:latest
    command: ["sleep", "3600"]
    volumes: [data:/data]
{extra}
volumes:
  data: {{}}
configs:
  site:
    content: hello
"""


def _render(tmp_path: Path, loader: Any, db_url: str = "a", extra: str = "") -> list[dict[str, Any]]:
    path = tmp_path / "compose.yaml"
    path.write_text(STACK.format(db_url=db_url, extra=extra))
    loaded = loader(path)
    return translate(loaded.project, "shop", loaded.source_map).manifests()


def _cluster(fake: Any, namespace: str = "shop") -> Cluster:
    config = Configuration()
    config.host = fake.host
    return Cluster(ApiClient(config), namespace)


def test_deploy_applies_every_object_server_side(fake_kube: Any, tmp_path: Path, loader: Any) -> None:
    desired = _render(tmp_path, loader)
    done = deploy(_cluster(fake_kube), "shop", desired)
    stored = fake_kube.stored("shop")
    assert sorted(stored) == sorted(f"{m['kind']}/{m['metadata']['name']}" for m in desired)
    assert "Namespace/shop" in str(done) and "create Deployment/web" in str(done)
    assert ("namespaces", None, "shop") in fake_kube.objects
    patches = [r for r in fake_kube.requests if r.method == "PATCH"]
    assert len(patches) == len(desired) + 1  # + the namespace
    for request in patches:
        assert request.content_type == "application/apply-patch+yaml"
        assert request.query["fieldManager"] == ["stackup"] and request.query["force"] == ["true"]
    web = stored["Deployment/web"]
    assert web["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "stackup"
    assert web["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "DB_URL", "value": "a"}]


def test_plan_is_empty_after_deploy_despite_server_defaults(
    fake_kube: Any, tmp_path: Path, loader: Any
) -> None:
    desired = _render(tmp_path, loader)
    cluster = _cluster(fake_kube)
    deploy(cluster, "shop", desired)
    assert fake_kube.stored("shop")["Deployment/web"]["spec"]["revisionHistoryLimit"] == 10
    result = plan(cluster, "shop", desired)
    assert not result and str(result) == "no changes"


def test_plan_shows_a_changed_value_field_by_field(fake_kube: Any, tmp_path: Path, loader: Any) -> None:
    cluster = _cluster(fake_kube)
    deploy(cluster, "shop", _render(tmp_path, loader, db_url="a"))
    result = plan(cluster, "shop", _render(tmp_path, loader, db_url="b"))
    assert str(result) == (
        "~ update Deployment/web\n"
        '    spec.template.spec.containers[web].env[DB_URL].value: "a" -> "b"'
    )


def test_plan_reports_removed_fields_and_services_and_deploy_prunes(
    fake_kube: Any, tmp_path: Path, loader: Any
) -> None:
    cluster = _cluster(fake_kube)
    extra = "  worker:\n    image: stackup-bench/busybox:latest\n    command: [sleep, '1']\n"
    deploy(cluster, "shop", _render(tmp_path, loader, extra=extra))
    assert "Deployment/worker" in fake_kube.stored("shop")
    desired = _render(tmp_path, loader)
    desired_web = next(m for m in desired if m["metadata"]["name"] == "web" and m["kind"] == "Deployment")
    del desired_web["spec"]["template"]["spec"]["containers"][0]["args"]
    text = str(plan(cluster, "shop", desired))
    assert '    spec.template.spec.containers[web].args: ["httpd", "-f", "-p", "80"] -> (removed)' in text
    assert "- delete Deployment/worker (no longer in the stack)" in text
    assert "- delete Service/worker (no longer in the stack)" in text
    deploy(cluster, "shop", desired)
    stored = fake_kube.stored("shop")
    assert "Deployment/worker" not in stored and "Service/worker" not in stored
    assert "args" not in stored["Deployment/web"]["spec"]["template"]["spec"]["containers"][0]


def test_dry_run_sends_dry_run_and_stores_nothing(fake_kube: Any, tmp_path: Path, loader: Any) -> None:
    fake_kube.put("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    desired = _render(tmp_path, loader)
    done = deploy(_cluster(fake_kube), "shop", desired, dry_run=True)
    assert len(done.items) == len(desired)
    assert fake_kube.stored("shop") == {}
    patches = [r for r in fake_kube.requests if r.method == "PATCH"]
    assert patches and all(r.query["dryRun"] == ["All"] for r in patches)


def test_down_deletes_only_what_carries_our_labels(fake_kube: Any, tmp_path: Path, loader: Any) -> None:
    cluster = _cluster(fake_kube)
    deploy(cluster, "shop", _render(tmp_path, loader))
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": "shop"},
               "data": {"a": "b"}}
    fake_kube.put("configmaps", "shop", foreign)
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "shop",
             "labels": {"app.kubernetes.io/managed-by": "stackup", "stackup.project": "other"}}}
    fake_kube.put("configmaps", "shop", other)
    removed = down(cluster, "shop")
    assert "Deployment/web" in removed and "PersistentVolumeClaim/shop-data" in removed
    assert removed.index("Deployment/web") < removed.index("PersistentVolumeClaim/shop-data")
    assert sorted(fake_kube.stored("shop")) == ["ConfigMap/other", "ConfigMap/theirs"]
    assert ("namespaces", None, "shop") in fake_kube.objects  # namespaces are never deleted
    deletes = [r for r in fake_kube.requests if r.method == "DELETE"]
    assert all(r.query["propagationPolicy"] == ["Background"] for r in deletes)


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path, loader: Any) -> None:
    config = Configuration()
    config.host = "http://127.0.0.1:9"  # discard port: nothing listens
    config.retries = False
    cluster = Cluster(ApiClient(config), "shop")
    with pytest.raises(OperationFailed, match="cannot reach the API server"):
        plan(cluster, "shop", _render(tmp_path, loader))


def test_a_rejected_object_names_it_and_the_server_message(fake_kube: Any) -> None:
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}
    expected = r"ConfigMap/Bad_Name: PATCH .* 422 .*metadata.name: Invalid value"
    with pytest.raises(OperationFailed, match=expected):
        _cluster(fake_kube).apply(bad)


def test_a_first_dry_run_into_a_missing_namespace_plans_it_and_sends_no_object(
        fake_kube: Any, tmp_path: Path, loader: Any) -> None:
    desired = _render(tmp_path, loader)
    cluster = _cluster(fake_kube)
    with pytest.raises(OperationFailed, match='namespaces "shop" not found'):
        cluster.apply(desired[0], dry_run=True)  # what an API server answers: nothing to put it in
    done = deploy(cluster, "shop", desired, dry_run=True)
    assert done.items[0].ref == "Namespace/shop" and len(done.items) == len(desired) + 1
    assert fake_kube.objects == {}
    assert [r.path for r in fake_kube.requests if r.method == "PATCH"][-1] == "/api/v1/namespaces/shop"
