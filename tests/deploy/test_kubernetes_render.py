"""Rendering on real stack files: every object valid against the Kubernetes OpenAPI schemas
(kubernetes-validate, offline, strict: unknown fields are errors), and golden output.

Golden files (tests/deploy/golden/<stack>.yaml: the manifests, then the warnings as comments)
are compared byte for byte; regenerate them with `STACKUP_UPDATE_GOLDEN=1 pytest tests/deploy`.
Absolute paths of the checkout are written as `$ROOT` so the files do not depend on where the
repository lives.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from stackup.deploy.kubernetes.container import cpu_quantity, memory_quantity
from stackup.deploy.kubernetes.render import translate

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "awesome-compose"
STACKS = sorted(CORPUS.glob("*/compose.y*ml")) + sorted((ROOT / "examples").glob("*/compose.y*ml"))
GOLDEN = Path(__file__).parent / "golden"
KUBERNETES_VERSION = "1.33"
# plex mounts ${PLEX_MEDIA_PATH}: unset, the stack does not load (tests/spec/test_config_cli.py)
ENV = {"PLEX_MEDIA_PATH": "/srv/media"}
# read at import: the autouse `clean_environ` fixture strips STACKUP_* before each test
UPDATE = bool(os.environ.get("STACKUP_UPDATE_GOLDEN"))


def _render(stack: Path, loader: Any) -> tuple[list[dict[str, Any]], str]:
    loaded = loader(stack, ENV)
    rendering = translate(loaded.project, None, loaded.source_map, environment=loaded.environment,
                          referenced_files=loaded.referenced_files)
    text = rendering.to_yaml() + "".join(f"# warning: {w}\n" for w in rendering.warnings)
    return rendering.manifests(), text.replace(str(ROOT), "$ROOT")


def test_the_stacks_are_there() -> None:
    assert len(STACKS) >= 30


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.parent.name)
def test_every_object_validates_against_the_schema(stack: Path, loader: Any) -> None:
    manifests, _ = _render(stack, loader)
    assert manifests
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.parent.name)
def test_golden(stack: Path, loader: Any) -> None:
    _, text = _render(stack, loader)
    golden = GOLDEN / f"{stack.parent.name}.yaml"
    if UPDATE:
        golden.write_text(text)
    assert golden.exists(), f"no golden file: run STACKUP_UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == golden.read_text()


def test_the_mapping_on_one_stack(tmp_path: Path, loader: Any) -> None:
    (tmp_path / "site.conf").write_text("listen 80\n")
    (tmp_path / "compose.yaml").write_text("""\
name: demo
services:
  web:
    image: web:1
    entrypoint: [/bin/run]
    command: [--port, "80"]
    ports: ["127.0.0.1:8080:80"]
    expose: ["9000"]
    deploy: {replicas: 1, resources: {limits: {cpus: "0.5", memory: 256M}, reservations: {memory: 64M}}}
    healthcheck: {test: [CMD, check], interval: 5s, timeout: 2s, retries: 4, start_period: 10s}
    configs: [{source: site, target: /etc/site.conf, mode: "0440"}]
    secrets: [token]
    networks: [front]
    cap_add: [NET_ADMIN]
    devices: ["/dev/fuse"]
    depends_on:
      migrate: {condition: service_completed_successfully}
  migrate:
    image: web:1
    command: [migrate]
    networks: [back]
  db:
    image: db:1
    scale: 2
    volumes: [data:/var/lib/db]
    networks: [back]
networks:
  front: {}
  back: {internal: true}
volumes:
  data: {}
configs:
  site: {file: ./site.conf}
secrets:
  token: {environment: TOKEN}
""")
    loaded = loader(tmp_path / "compose.yaml", {"TOKEN": "s3cret"})
    rendering = translate(loaded.project, "ns1", loaded.source_map, environment=loaded.environment)
    objs = {f"{m['kind']}/{m['metadata']['name']}": m for m in rendering.manifests()}
    assert sorted(objs) == [
        "ConfigMap/demo-site", "Deployment/web", "NetworkPolicy/db-internal", "NetworkPolicy/demo-net-back",
        "NetworkPolicy/demo-net-front", "NetworkPolicy/web-published", "PersistentVolumeClaim/demo-data",
        "Secret/demo-token", "Service/db", "Service/web", "StatefulSet/db",
    ]
    assert objs["ConfigMap/demo-site"]["data"] == {"site": "listen 80\n"}
    assert objs["Secret/demo-token"]["data"] == {"token": "czNjcmV0"}
    web = objs["Deployment/web"]
    pod = web["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert web["spec"]["replicas"] == 1 and objs["StatefulSet/db"]["spec"]["replicas"] == 2
    assert container["command"] == ["/bin/run"] and container["args"] == ["--port", "80"]
    assert container["ports"] == [
        {"containerPort": 80, "hostIP": "127.0.0.1", "hostPort": 8080, "protocol": "TCP"}]
    assert container["resources"] == {
        "limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"memory": "64Mi"}}
    assert container["readinessProbe"] == {"exec": {"command": ["check"]}, "failureThreshold": 4,
                                           "periodSeconds": 5, "timeoutSeconds": 2}
    assert container["livenessProbe"]["initialDelaySeconds"] == 10
    assert container["securityContext"] == {"capabilities": {"add": ["NET_ADMIN"]}}
    assert {"mountPath": "/etc/site.conf", "name": "c-site", "readOnly": True, "subPath": "site"} in (
        container["volumeMounts"])
    assert {"mountPath": "/run/secrets/token", "name": "s-token", "readOnly": True, "subPath": "token"} in (
        container["volumeMounts"])
    assert {"name": "c-site", "configMap": {"name": "demo-site", "items": [{"key": "site", "path": "site",
                                                                          "mode": 0o440}]}} in pod["volumes"]
    assert [c["name"] for c in pod["initContainers"]] == ["migrate"]
    assert pod["initContainers"][0]["args"] == ["migrate"]
    assert web["spec"]["template"]["metadata"]["labels"]["stackup.network.front"] == "true"
    assert objs["Service/web"]["spec"]["ports"] == [
        {"name": "tcp-80", "port": 80, "protocol": "TCP", "targetPort": 80},
        {"name": "tcp-9000", "port": 9000, "protocol": "TCP", "targetPort": 9000},
    ]
    assert objs["Service/db"]["spec"]["clusterIP"] == "None"
    assert objs["StatefulSet/db"]["spec"]["serviceName"] == "db"
    internal = objs["NetworkPolicy/db-internal"]["spec"]
    assert internal["policyTypes"] == ["Egress"]
    warnings = [str(w) for w in rendering.warnings]
    assert warnings == [
        "compose.yaml:15:5: services.web.devices: not supported on kubernetes; left out",
        "compose.yaml:17:7: services.web.depends_on.migrate: migrate runs as an init container of each "
        "web pod",
        "compose.yaml:25:5: services.db.volumes: 2 replicas share one ReadWriteOnce claim per named volume",
    ]


@pytest.mark.parametrize(("cpus", "expected"), [(1.0, "1"), (2.0, "2"), (0.5, "500m"), (1.25, "1250m")])
def test_cpu_quantities_are_in_the_form_the_api_server_reads_back(cpus: float, expected: str) -> None:
    assert cpu_quantity(cpus) == expected  # "1000m" would show as drift against the stored "1"


@pytest.mark.parametrize(("size", "expected"), [
    (512 << 20, "512Mi"), (1536 << 20, "1536Mi"), (1 << 40, "1Ti"), (1000 << 10, "1000Ki"),
    (1_500_000, "1500k"), (3_000_000, "3M"), (999, "999")])
def test_memory_quantities_are_canonical(size: int, expected: str) -> None:
    assert memory_quantity(size) == expected
