"""Play rendered manifests with `podman kube play` the way a cluster would run them.

Podman 4.3 has no Services and no controller that retries a failed init container, so the
`Player` stands in for those two cluster parts only, with what the manifests themselves say:
every workload joins one private network with the names of the Services that select it as DNS
aliases (`--network NET:alias=SERVICE`, what cluster DNS gives), and workloads are played in
the stack's dependency order, each waiting until its readiness probe passes in it (run with
`podman exec`, as the kubelet runs an exec probe) before the next one starts. Everything it
made, pods, volumes, the network and the images it loaded, is removed by `close()`, even after
a failure.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HEALTH_DEADLINE_S = 300.0
WORKLOADS = ("Deployment", "StatefulSet")


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}\n{result.stderr}")
    return result


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _claims(workload: dict[str, Any]) -> set[str]:
    pod = workload["spec"]["template"]["spec"]
    return {v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes") or []
            if "persistentVolumeClaim" in v}


def _config_sources(workload: dict[str, Any]) -> set[tuple[str, str]]:
    pod = workload["spec"]["template"]["spec"]
    found: set[tuple[str, str]] = set()
    for volume in pod.get("volumes") or []:
        if "configMap" in volume:
            found.add(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume:
            found.add(("Secret", volume["secret"]["secretName"]))
    return found


@dataclass
class Player:
    directory: Path
    network: str = field(default_factory=lambda: f"kp-{uuid.uuid4().hex[:8]}")
    played: list[Path] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    _network_made: bool = False

    def load_images(self, archive: Path) -> list[str]:
        """`podman load` a `stackup image save` archive; the names Podman gave them."""
        out = podman("load", "-i", str(archive)).stdout
        names = [n.strip() for line in out.splitlines() if line.startswith("Loaded image")
                 for n in line.split(":", 1)[1].split(",")]
        self.images += names
        return names

    def play(self, manifests: list[dict[str, Any]], order: Iterable[str], *, tls_verify: bool = True) -> None:
        """Play each workload named in `order` (dependencies first) with the claims and configs it
        uses, on the private network under its Services' names, waiting for it to turn healthy."""
        if not self._network_made:
            podman("network", "create", self.network)
            self._network_made = True
        workloads = {m["metadata"]["name"]: m for m in manifests if m["kind"] in WORKLOADS}
        services = [m for m in manifests if m["kind"] == "Service"]
        extra = {(m["kind"], m["metadata"]["name"]): m for m in manifests
                 if m["kind"] in ("PersistentVolumeClaim", "ConfigMap", "Secret")}
        sent: set[tuple[str, str]] = set()
        for name in order:
            workload = workloads[name]
            wanted = {("PersistentVolumeClaim", c) for c in _claims(workload)} | _config_sources(workload)
            docs = [extra[key] for key in sorted(wanted - sent) if key in extra]
            sent |= wanted
            self.volumes += [d["metadata"]["name"] for d in docs if d["kind"] != "Secret"]
            labels = workload["spec"]["template"]["metadata"].get("labels") or {}
            aliases = [s["metadata"]["name"] for s in services
                       if _selects(s["spec"].get("selector") or {}, labels)]
            path = self.directory / f"play-{name}.yaml"
            path.write_text(yaml.safe_dump_all([*docs, workload], sort_keys=False))
            self.played.append(path)
            network = self.network + "".join(f"{',' if i else ':'}alias={a}" for i, a in enumerate(aliases))
            podman("kube", "play", f"--tls-verify={str(tls_verify).lower()}", "--network", network, str(path))
            self._wait_healthy(workload)

    def _wait_healthy(self, workload: dict[str, Any]) -> None:
        """Run each container's readiness probe (else its liveness probe) in it until it passes,
        as the kubelet does. Not `podman healthcheck run`: Podman 4.3 joins an exec probe's argv
        with spaces into one shell line, so `[/bin/sh, -c, "test -f /tmp/ready"]` runs
        `sh -c test ...`, always fails, and its restart-on-failure action restarts the container."""
        pod = f"{workload['metadata']['name']}-pod-0"
        for container in workload["spec"]["template"]["spec"]["containers"]:
            probe = container.get("readinessProbe") or container.get("livenessProbe")
            if probe is None:
                continue
            assert "exec" in probe, f"only exec probes are rendered, got {probe}"
            name = f"{pod}-{container['name']}"
            deadline = time.monotonic() + HEALTH_DEADLINE_S
            while podman("exec", name, *probe["exec"]["command"], check=False).returncode != 0:
                state = podman("inspect", name, "--format", "{{.State.Status}}", check=False).stdout.strip()
                if time.monotonic() > deadline or state not in ("running", "created", "configured"):
                    logs = podman("logs", name, check=False)
                    raise AssertionError(f"{name} never turned ready ({state})\n{logs.stdout}{logs.stderr}")
                time.sleep(0.5)

    def exec(self, workload: str, *argv: str) -> str:
        return podman("exec", f"{workload}-pod-0-{workload}", *argv).stdout

    def close(self) -> None:
        for path in reversed(self.played):
            podman("kube", "down", str(path), check=False)
        for volume in self.volumes:
            podman("volume", "rm", "-f", volume, check=False)
        if self._network_made:
            podman("network", "rm", "-f", self.network, check=False)
        for image in self.images:
            podman("rmi", image, check=False)
