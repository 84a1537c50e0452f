"""`deploy --target swarm`: the stack as Docker Swarm services, through the docker SDK.

What `docker stack deploy` makes, made the same way (names and the namespace label, so the
docker CLI's `stack` commands see it): overlay networks, secrets and configs, then one service per
compose service, created or updated in place (Swarm rolls an update out task by task following
`deploy.update_config`); a job (see `swarm_spec.jobs`) runs again only when its spec changed.
Secrets and configs are immutable in Swarm, so their names carry a
digest of the content: a changed file becomes a new object and the service update switches to it.
`deploy` waits until every service runs its replicas (or says which task failed and why) and
prunes what the stack no longer has; `remove_stack` takes everything away (volumes on request).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import docker  # type: ignore[import-untyped]
from docker.errors import APIError, NotFound  # type: ignore[import-untyped]

from stackup.deploy.notes import Notes
from stackup.deploy.sources import Sources
from stackup.deploy.swarm_spec import (
    NAMESPACE_LABEL,
    Refs,
    SwarmOptions,
    check_service,
    jobs,
    service_spec,
    stack_labels,
)
from stackup.errors import OperationFailed
from stackup.spec.errors import Problem, SourceMap
from stackup.spec.models import Config, Project, Secret

DIGEST_LABEL = "stackup.digest"
SPEC_LABEL = "stackup.spec-digest"  # on jobs: updating a job's spec reruns it, so unchanged means untouched


def _label_filter(project: str) -> dict[str, str]:
    return {"label": f"{NAMESPACE_LABEL}={project}"}


def require_manager(client: docker.DockerClient) -> None:
    swarm = client.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise OperationFailed("swarm", "this Docker daemon is not a swarm manager; run `docker swarm init` "
                                       "(or point DOCKER_HOST at a manager)")


class SwarmDeploy:
    """One deploy of one project; `run()` converges the swarm on it and returns what it did."""

    def __init__(self, client: docker.DockerClient, project: Project, source_map: SourceMap | None = None,
                 environment: Mapping[str, str] | None = None,
                 referenced_files: Mapping[str, bytes] | None = None, *,
                 options: SwarmOptions | None = None) -> None:
        self.client = client
        self.options = options or SwarmOptions()
        self.project = project
        self.name = project.name
        self.notes = Notes(source_map, "swarm")
        self.sources = Sources(self.notes, environment, referenced_files)
        self.actions: list[str] = []

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return self.notes.sorted()

    def run(self, timeout: float = 180) -> list[str]:
        require_manager(self.client)
        one_shots = jobs(self.project)
        for name in sorted(self.project.services):
            check_service(self.notes, name, self.project.services[name], one_shots)
        refs = Refs(self._networks(), self._files("secrets"), self._files("configs"))
        volumes = {k: v.name or f"{self.name}_{k}" for k, v in self.project.volumes.items()}
        wanted = set()
        for name in sorted(self.project.services):
            service = self.project.services[name]
            env = self.sources.service_env(name, service)
            spec = service_spec(self.name, name, service, env=env, refs=refs, volumes=volumes,
                                notes=self.notes, job=name in one_shots, options=self.options)
            wanted.add(spec["name"])
            self._apply_service(spec, job=name in one_shots)
        for svc in self.client.services.list(filters=_label_filter(self.name)):
            if svc.name not in wanted:
                svc.remove()
                self.actions.append(f"remove service {svc.name} (no longer in the stack)")
        wait_converged(self.client, self.name, timeout)
        self._prune_files(refs)
        return self.actions

    def _networks(self) -> dict[str, str]:
        used = {net for svc in self.project.services.values() for net in svc.networks}
        ids: dict[str, str] = {}
        for key in sorted(used):
            net = self.project.networks.get(key)
            name = (net.name if net and net.name else None) or f"{self.name}_{key}"
            found = [n for n in self.client.networks.list(names=[name]) if n.name == name]
            if found:
                ids[key] = found[0].id
                continue
            if net is not None and net.external:
                raise OperationFailed(f"network {name}", "external network does not exist")
            driver = (net.driver if net else None) or "overlay"
            created = self.client.networks.create(
                name, driver=driver, attachable=True, internal=bool(net and net.internal),
                options=dict(net.driver_opts) if net else None, labels=stack_labels(self.name), scope="swarm",
            )
            ids[key] = created.id
            self.actions.append(f"create network {name}")
        return ids

    def _files(self, kind: str) -> dict[str, tuple[str, str]]:
        secrets = kind == "secrets"
        tops: Mapping[str, Secret | Config] = self.project.secrets if secrets else self.project.configs
        store = self.client.secrets if kind == "secrets" else self.client.configs
        out: dict[str, tuple[str, str]] = {}
        for key, item in sorted(tops.items()):
            if item.external:
                name = item.name or key
                found = [o for o in store.list(filters={"name": name}) if o.name == name]
                if not found:
                    raise OperationFailed(f"{kind[:-1]} {name}", "external object does not exist")
                out[key] = (found[0].id, name)
                continue
            content = self.sources.content(kind, key, item)
            if content is None:
                continue
            digest = hashlib.sha256(content).hexdigest()
            name = f"{(item.name or f'{self.name}_{key}')[:50]}_{digest[:12]}"
            found = [o for o in store.list(filters={"name": name}) if o.name == name]
            if found:
                out[key] = (found[0].id, name)
                continue
            labels = {**stack_labels(self.name), DIGEST_LABEL: digest}
            created = store.create(name=name, data=content, labels=labels)
            out[key] = (created.id, name)
            self.actions.append(f"create {kind[:-1]} {name}")
        return out

    def _apply_service(self, spec: dict[str, Any], job: bool) -> None:
        name = spec["name"]
        if job:
            digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
            spec = {**spec, "labels": {**spec["labels"], SPEC_LABEL: digest}}
        found = [s for s in self.client.services.list(filters={"name": name}) if s.name == name]
        api = self.client.api
        if not found:
            api.create_service(**spec)
            self.actions.append(f"create {'job' if job else 'service'} {name}")
            return
        current = found[0]
        before = current.attrs["Spec"]
        if job:
            if before.get("Labels", {}).get(SPEC_LABEL) != spec["labels"][SPEC_LABEL]:
                api.update_service(current.id, current.version, **spec)
                self.actions.append(f"update job {name} (runs again)")
            return
        api.update_service(current.id, current.version, **spec)
        current.reload()
        if current.attrs["Spec"] != before:
            self.actions.append(f"update service {name}")

    def _prune_files(self, refs: Refs) -> None:
        """Secrets/configs of earlier deploys that no service uses any more."""
        keep = {ident for ident, _ in (*refs.secrets.values(), *refs.configs.values())}
        for kind, store in (("secret", self.client.secrets), ("config", self.client.configs)):
            for obj in store.list(filters=_label_filter(self.name)):
                if obj.id in keep:
                    continue
                try:
                    obj.remove()
                    self.actions.append(f"remove {kind} {obj.name} (replaced)")
                except APIError:
                    pass  # still referenced by a task shutting down; the next deploy or down removes it


def _poll(until: Callable[[], str | None], timeout: float, what: str) -> None:
    """Call `until` until it returns None (done); on timeout, fail with its last explanation."""
    deadline = time.monotonic() + timeout
    while True:
        reason = until()
        if reason is None:
            return
        if time.monotonic() > deadline:
            raise OperationFailed(what, reason)
        time.sleep(0.5)


def wait_converged(client: docker.DockerClient, project: str, timeout: float) -> None:
    """Every replicated service of the stack runs its replicas, and no update is in progress."""
    def pending() -> str | None:
        for svc in client.services.list(filters=_label_filter(project)):
            svc.reload()
            mode = svc.attrs["Spec"].get("Mode", {})
            update = (svc.attrs.get("UpdateStatus") or {}).get("State")
            if update in ("updating", "rollback_started"):
                return f"{svc.name}: update in progress"
            if update in ("paused", "rollback_paused", "rollback_completed"):
                message = svc.attrs["UpdateStatus"].get("Message", "")
                raise OperationFailed(svc.name, f"update {update}: {message}")
            if "ReplicatedJob" in mode:
                reason = _job_pending(svc, mode["ReplicatedJob"].get("TotalCompletions", 1))
                if reason:
                    return reason
                continue
            if "Replicated" not in mode:
                continue
            want = mode["Replicated"].get("Replicas", 1)
            tasks = svc.tasks(filters={"desired-state": "running"})
            running = [t for t in tasks if t["Status"]["State"] == "running"]
            if len(running) != want or len(tasks) != want:
                errors = [t["Status"].get("Err") for t in svc.tasks() if t["Status"].get("Err")]
                detail = f"; last task error: {errors[-1]}" if errors else ""
                return f"{svc.name}: {len(running)}/{want} tasks running{detail}"
        return None

    _poll(pending, timeout, f"stack {project}")


def _job_pending(svc: Any, want: int) -> str | None:
    """A replicated job of the current iteration: None once `want` tasks completed."""
    iteration = ((svc.attrs.get("JobStatus") or {}).get("JobIteration") or {}).get("Index")
    tasks = [t for t in svc.tasks() if (t.get("JobIteration") or {}).get("Index") == iteration]
    done = sum(t["Status"]["State"] == "complete" for t in tasks)
    if done >= want:
        return None
    errors = [t["Status"].get("Err") or t["Status"].get("Message") for t in tasks
              if t["Status"]["State"] in ("failed", "rejected")]
    policy = svc.attrs["Spec"]["TaskTemplate"].get("RestartPolicy") or {}
    if errors and policy.get("Condition") == "none":
        raise OperationFailed(svc.name, f"job failed and is not retried (restart_policy none): {errors[-1]}")
    detail = f"; last failure: {errors[-1]}" if errors else ""
    return f"{svc.name}: job {done}/{want} completed{detail}"


def scale_service(client: docker.DockerClient, project: str, service: str, replicas: int,
                  timeout: float = 120) -> None:
    found = client.services.get(f"{project}_{service}")
    found.scale(replicas)
    wait_converged(client, project, timeout)


def remove_stack(client: docker.DockerClient, project: str, volumes: bool = False,
                 timeout: float = 120) -> list[str]:
    """Remove everything carrying the stack's label: services (waiting for their containers),
    then networks, secrets and configs; named volumes only with `volumes`."""
    removed: list[str] = []
    for svc in client.services.list(filters=_label_filter(project)):
        svc.remove()
        removed.append(f"service {svc.name}")

    def containers_left() -> str | None:
        # the raw list: no per-container inspect, which races with the task containers going away
        left = client.api.containers(all=True, filters=_label_filter(project))
        for container in left:
            if container.get("State") in ("exited", "created", "dead"):
                _remove_exited(client, container["Id"])
        return f"{len(left)} task containers still present" if left else None

    _poll(containers_left, timeout, f"stack {project}")
    for net in client.networks.list(filters=_label_filter(project)):
        _remove_retrying(net, timeout)
        removed.append(f"network {net.name}")
    for kind, store in (("secret", client.secrets), ("config", client.configs)):
        for obj in store.list(filters=_label_filter(project)):
            obj.remove()
            removed.append(f"{kind} {obj.name}")
    if volumes:
        for vol in client.volumes.list(filters=_label_filter(project)):
            vol.remove()
            removed.append(f"volume {vol.name}")
    return removed


def _remove_exited(client: docker.DockerClient, ident: str) -> None:
    """A stopped task container of a removed service. Swarm reaps those of services itself, but
    not those of jobs (moby/moby#42789, #44312: their tasks outlive the service), so we do."""
    with contextlib.suppress(NotFound, APIError):  # gone, or the agent removes it: the next poll sees
        client.api.remove_container(ident, v=False)


def _remove_retrying(obj: Any, timeout: float) -> None:
    """Overlay networks keep endpoints for a moment after the last task container goes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            obj.remove()
            return
        except NotFound:
            return
        except APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
