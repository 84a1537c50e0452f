"""`DockerRuntime`: the planner's `Runtime` (and the front ends' `ContainerOps`) over dockerd.

Translation only, as the native runtime is: decisions stay in the planner. What makes it fast is
fewer round trips, not cleverness: one shared `APIClient` with a pool sized for `execute`'s
threads and a pinned API version (no negotiation request); `list_containers` is one filtered list
whose entries already carry state, health and exit code; `create_container` answers from the
create response instead of inspecting; hooks and image IDs are remembered from earlier answers.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime import labels as lbl
from stackup.runtime.base import (
    Backend,
    BuildProgress,
    BuildSpec,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    ExecSpec,
    HookSpec,
    ImageInfo,
    LayerProgress,
    NetworkInfo,
    NetworkSpec,
    TransferProgress,
    TransferState,
    VolumeInfo,
    VolumeSpec,
)
from stackup.runtime.docker import endpoint as ep
from stackup.runtime.docker import translate
from stackup.runtime.docker.errors import daemon_errors, unavailable
from stackup.runtime.docker.hooks import Hooks, hooks_label, hooks_of
from stackup.runtime.docker.labels import container_labels, network_labels, volume_labels
from stackup.runtime.docker.ops import ContainerOpsMixin
from stackup.runtime.docker.readback import read_back

_INSPECTS = 8
"""Concurrent inspects after a list: enough to hide the round trips, few for a 2-core daemon."""


class DockerRuntime(ContainerOpsMixin):
    """A `Backend` over the Docker Engine API (also Podman's compatible socket)."""

    name = "docker"
    default_parallel = ep.PARALLEL
    """The executor's parallelism when the caller chose none (see `endpoint.PARALLEL`)."""

    def __init__(self, api: Any, endpoint: ep.Endpoint, *, stop_timeout_s: float | None = None) -> None:
        self.api = api
        self.endpoint = endpoint
        self.stop_timeout_s = stop_timeout_s
        """Overrides each container's grace period when set (`down -t`, `stop -t`)."""
        self._hooks: dict[str, Hooks] = {}
        self._image_ids: dict[str, str] = {}
        self._fresh: set[str] = set()
        """Containers this runtime created and has not started yet (see `start_container`)."""
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, stop_timeout_s: float | None = None
    ) -> DockerRuntime:
        """The daemon the docker CLI would talk to with `environ` (DOCKER_HOST, context, default).
        `stop_timeout_s` overrides every container's grace period (`down -t`)."""
        env = os.environ if environ is None else environ
        where = ep.resolve(env)
        if where.url.startswith("unix://") and not os.path.exists(where.url.removeprefix("unix://")):
            # said before any request: the SDK's failed unix connect also leaks its socket
            raise unavailable(str(where), FileNotFoundError(2, "No such file or directory"))
        with daemon_errors(str(where), "docker client"):
            return cls(ep.api_client(where, env), where, stop_timeout_s=stop_timeout_s)

    def _call(self, what: str) -> AbstractContextManager[None]:
        return daemon_errors(str(self.endpoint), what)

    def close(self) -> None:
        self.api.close()

    def ping(self) -> None:
        """Raise `EngineUnavailable` (naming the endpoint) unless the daemon answers."""
        with self._call("ping"):
            self.api.ping()

    # -- containers -------------------------------------------------------------------------------

    def _remember(self, info: ContainerInfo) -> ContainerInfo:
        self._hooks[info.id] = hooks_of(info.labels)
        return info

    def _list(self, project: str) -> list[Mapping[str, Any]]:
        """One filtered list call: the Compose project label is on every container stackup makes
        here and on every container Compose made, so both are found."""
        with self._call(f"list containers of {project}"):
            label = f"{lbl.COMPOSE_PROJECT}={project}" if project else lbl.COMPOSE_PROJECT
            return list(self.api.containers(all=True, filters={"label": label}))

    def list_containers(self, project: str) -> list[ContainerInfo]:
        """The list, then one inspect per container, in parallel: the list has no restart count,
        health log or full description, which `ps`, `inspect` and the readiness diagnosis show
        (the native engine's list has them)."""
        found = self._list(project)
        if not found:
            return []
        with cf.ThreadPoolExecutor(max_workers=min(_INSPECTS, len(found))) as pool:
            full = [d for d in pool.map(self._inspect_raw, (str(e["Id"]) for e in found)) if d is not None]
        infos = [self._remember(translate.from_inspect(data)) for data in full]
        if any(_adopted(i) for i in infos):
            infos = self._read_back(infos, {str(d["Id"]): d for d in full})
        return infos

    def list_containers_brief(self, project: str) -> list[ContainerInfo]:
        """What `reconcile` reads (state, health, exit code, labels, ports) from the list alone:
        `planner.observe` prefers this, so a plan costs one request however many containers
        there are; only containers another tool made are inspected (to read their spec back)."""
        infos = [self._remember(translate.from_list(entry)) for entry in self._list(project)]
        adopted = [i.id for i in infos if _adopted(i)]
        if not adopted:
            return infos
        inspected = {cid: data for cid in adopted if (data := self._inspect_raw(cid)) is not None}
        return self._read_back([i for i in infos if not _adopted(i) or i.id in inspected], inspected)

    def _inspect_raw(self, container_id: str) -> Mapping[str, Any] | None:
        """The daemon's inspect answer; None when the container was removed since the list."""
        try:
            with self._call(f"container {container_id[:12]}"):
                return dict(self.api.inspect_container(container_id))
        except NotFound:
            return None

    def _read_back(
        self, infos: list[ContainerInfo], inspected: Mapping[str, Mapping[str, Any]]
    ) -> list[ContainerInfo]:
        """Attach `spec` to containers another tool made (one inspect per image): only these cost
        more, and only until stackup recreates them."""
        services = {i.id: i.labels.get(lbl.COMPOSE_SERVICE, "") for i in infos}
        images: dict[str, Mapping[str, Any]] = {}
        out = []
        for info in infos:
            if not _adopted(info):
                out.append(info)
                continue
            data = inspected[info.id]
            ref = str(data.get("Image") or "")
            if ref not in images:
                try:
                    with self._call(f"image {ref}"):
                        images[ref] = self.api.inspect_image(ref).get("Config") or {}
                except NotFound:
                    images[ref] = {}  # image gone: nothing of it to subtract
            out.append(replace(info, spec=read_back(data, images[ref], services)))
        return out

    def inspect_container(self, container_id: str) -> ContainerInfo:
        with self._call(f"container {container_id}"):
            data = self.api.inspect_container(container_id)
        return self._remember(translate.from_inspect(data))

    def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        mode = self._network_mode(spec)
        labels = {
            **container_labels(spec.labels, self._image_ids.get(spec.image)),
            **hooks_label(spec.post_start, spec.pre_stop),
        }
        body = translate.create_body(spec, labels, mode)
        with self._call(f"create container {spec.name}"):
            answer = self.api.create_container_from_config(body, name=spec.name)
        cid = str(answer["Id"])
        try:
            for attachment in translate.extra_networks(spec, mode):
                config = translate.endpoint_config(spec, attachment)
                ipam = config.get("IPAMConfig", {})
                with self._call(f"connect {spec.name} to {attachment.network}"):
                    self.api.connect_container_to_network(
                        cid,
                        attachment.network,
                        aliases=config["Aliases"],
                        ipv4_address=ipam.get("IPv4Address"),
                        ipv6_address=ipam.get("IPv6Address"),
                    )
        except RuntimeFailure:
            self._discard(cid)
            raise
        self._hooks[cid] = Hooks(spec.post_start, spec.pre_stop)
        with self._lock:
            self._fresh.add(cid)
        return ContainerInfo(id=cid, name=spec.name, image=spec.image, labels=labels)

    def _discard(self, container_id: str) -> None:
        """Remove a half-made container so a failed create leaves nothing behind."""
        try:
            with self._call(f"remove container {container_id}"):
                self.api.remove_container(container_id, force=True, v=True)
        except RuntimeFailure:
            pass  # the create's own error is the one worth reporting

    def _network_mode(self, spec: ContainerSpec) -> str | None:
        """`service:x` -> `container:<id of x's container>` (running first); others unchanged."""
        mode = spec.network_mode
        if not mode or not mode.startswith("service:"):
            return mode
        service = mode.removeprefix("service:")
        project = spec.labels.get(lbl.PROJECT, "")
        filters = {"label": [f"{lbl.COMPOSE_PROJECT}={project}", f"{lbl.COMPOSE_SERVICE}={service}"]}
        with self._call(f"{spec.name}: network_mode {mode}"):
            found = [translate.from_list(c) for c in self.api.containers(all=True, filters=filters)]
        if not found:
            raise NotFound(f"{spec.name}: network_mode {mode}: service {service} has no container")
        found.sort(key=lambda c: (c.state is not ContainerState.RUNNING, c.name))
        return f"container:{found[0].id}"

    def _hooks_of(self, container_id: str) -> Hooks:
        known = self._hooks.get(container_id)
        return known if known is not None else hooks_of(self.inspect_container(container_id).labels)

    def start_container(self, container_id: str) -> None:
        """Start; a container this runtime just created whose first start fails (a host port
        taken, a missing command) is removed again, so a failed `up` leaves nothing half-made,
        as the native engine checks such things before anything starts."""
        with self._lock:
            fresh = container_id in self._fresh
            self._fresh.discard(container_id)
        try:
            with self._call(f"start container {container_id}"):
                self.api.start(container_id)
        except RuntimeFailure:
            if fresh:
                self._discard(container_id)
            raise
        for hook in self._hooks_of(container_id).post_start:
            out = self._run_hook(container_id, hook)
            if out.exit_code != 0:
                said = (out.stderr or out.stdout).decode(errors="replace").strip()
                raise RuntimeFailure(
                    f"container {container_id[:12]}: post_start hook {list(hook.command)} failed: "
                    f"exit code {out.exit_code}{': ' + said if said else ''}"
                )

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None:
        hooks = self._hooks_of(container_id)
        for hook in hooks.pre_stop:
            try:
                self._run_hook(container_id, hook)
            except RuntimeFailure:
                break  # not running (nothing to prepare) or gone: stop decides what that means
        timeout = self.stop_timeout_s if timeout_s is None else timeout_s
        with self._call(f"stop container {container_id}"):
            self.api.stop(container_id, timeout=None if timeout is None else max(0, round(timeout)))

    def _run_hook(self, container_id: str, hook: HookSpec) -> Any:
        return self.exec(
            container_id,
            ExecSpec(
                command=hook.command,
                user=hook.user,
                working_dir=hook.working_dir,
                environment=hook.environment,
                privileged=hook.privileged,
            ),
        )

    def remove_container(self, container_id: str) -> None:
        """Force-remove with its anonymous volumes (they belong to no one else)."""
        with self._call(f"remove container {container_id}"):
            self.api.remove_container(container_id, force=True, v=True)
        self._hooks.pop(container_id, None)

    # -- networks ---------------------------------------------------------------------------------

    def list_networks(self) -> list[NetworkInfo]:
        with self._call("list networks"):
            found = self.api.networks()
        return [NetworkInfo(name=n["Name"], id=n["Id"], labels=dict(n.get("Labels") or {})) for n in found]

    def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        pools = [{"Subnet": s} for s in spec.subnets]
        ipam = {"Driver": "default", "Config": pools} if pools else None
        labels = network_labels(spec.labels)
        with self._call(f"create network {spec.name}"):
            answer = self.api.create_network(
                spec.name,
                driver=spec.driver,
                internal=spec.internal,
                enable_ipv6=spec.enable_ipv6,
                labels=labels,
                ipam=ipam,
                check_duplicate=True,
            )
        return NetworkInfo(name=spec.name, id=str(answer["Id"]), labels=labels)

    def remove_network(self, name: str) -> None:
        with self._call(f"remove network {name}"):
            self.api.remove_network(name)

    # -- volumes ----------------------------------------------------------------------------------

    def list_volumes(self) -> list[VolumeInfo]:
        with self._call("list volumes"):
            found = self.api.volumes().get("Volumes") or []
        return [VolumeInfo(name=v["Name"], labels=dict(v.get("Labels") or {})) for v in found]

    def create_volume(self, spec: VolumeSpec) -> VolumeInfo:
        labels = volume_labels(spec.labels)
        with self._call(f"create volume {spec.name}"):
            self.api.create_volume(
                spec.name, driver=spec.driver, driver_opts=dict(spec.driver_opts) or None, labels=labels
            )
        return VolumeInfo(name=spec.name, labels=labels)

    def remove_volume(self, name: str) -> None:
        with self._call(f"remove volume {name}"):
            self.api.remove_volume(name)

    # -- images -----------------------------------------------------------------------------------

    def _image(self, data: Mapping[str, Any]) -> ImageInfo:
        refs = _short_refs(r for r in data.get("RepoTags") or () if r and r != "<none>:<none>")
        with self._lock:
            self._image_ids.update(dict.fromkeys(refs, str(data["Id"])))
        return ImageInfo(id=str(data["Id"]), refs=refs)

    def list_images(self) -> list[ImageInfo]:
        with self._call("list images"):
            found = self.api.images()
        return [self._image(i) for i in found]

    def inspect_image(self, ref: str) -> ImageInfo:
        with self._call(f"image {ref}"):
            return self._image(self.api.inspect_image(ref))

    def pull_image(self, ref: str, *, platform: str | None = None,
                   progress: TransferProgress | None = None) -> ImageInfo:
        from docker.utils import parse_repository_tag  # type: ignore[import-untyped]

        repo, tag = parse_repository_tag(ref)
        with self._call(f"pull {ref}"):
            for line in self.api.pull(repo, tag=tag or "latest", stream=True, decode=True, platform=platform):
                _follow(ref, "pull", line, progress)
        return self.inspect_image(ref)

    def push_image(self, ref: str, *, progress: TransferProgress | None = None) -> str:
        from docker.utils import parse_repository_tag

        repo, tag = parse_repository_tag(ref)
        digest = ""
        with self._call(f"push {ref}"):
            for line in self.api.push(repo, tag=tag or "latest", stream=True, decode=True):
                _follow(ref, "push", line, progress)
                if isinstance(line, dict):
                    digest = str((line.get("aux") or {}).get("Digest") or digest)
        return digest

    def tag_image(self, ref: str, target: str) -> ImageInfo:
        from docker.utils import parse_repository_tag

        repo, tag = parse_repository_tag(target)
        with self._call(f"tag {ref} {target}"):
            self.api.tag(ref, repo, tag or "latest")
        return self.inspect_image(target)

    def build_image(self, spec: BuildSpec, progress: BuildProgress | None = None) -> ImageInfo:
        """Build through the daemon's classic builder (`docker/building.py` says what passes)."""
        from stackup.runtime.docker.building import run_build

        with self._call(f"build {spec.tag}"):
            run_build(self.api, spec, progress)
        return self.inspect_image(spec.tag)

    def remove_image(self, ref: str) -> None:
        with self._call(f"remove image {ref}"):
            self.api.remove_image(ref)
        with self._lock:
            self._image_ids.pop(ref, None)

    # -- container images -------------------------------------------------------------------------

    def commit_container(self, container_id: str, ref: str | None = None) -> ImageInfo:
        from docker.utils import parse_repository_tag

        repo, tag = parse_repository_tag(ref) if ref else (None, None)
        with self._call(f"commit {container_id[:12]}"):
            answer = self.api.commit(container_id, repository=repo, tag=tag)
        return self.inspect_image(str(answer["Id"]))

    def export_container(self, container_id: str) -> Iterator[bytes]:
        with self._call(f"export {container_id[:12]}"):
            chunks = self.api.export(container_id)
        with self._call(f"export {container_id[:12]}"):
            yield from chunks


def _short_refs(refs: Iterable[str]) -> tuple[str, ...]:
    """Every ref plus the short name a stack file uses for it: Podman lists `localhost/app:1`
    and `docker.io/library/nginx:1.25` where Docker lists `app:1` and `nginx:1.25`, and resolves
    the short names to them, so the planner must find an image under either spelling."""
    out: dict[str, None] = {}
    for ref in refs:
        out[ref] = None
        for prefix in ("localhost/", "docker.io/library/", "docker.io/"):
            if ref.startswith(prefix):
                out[ref.removeprefix(prefix)] = None
                break
    return tuple(out)


def _adopted(info: ContainerInfo) -> bool:
    """Made by Docker Compose, not by stackup: no stackup config label to compare with."""
    labels = info.labels
    return lbl.COMPOSE_SERVICE in labels and lbl.CONFIG not in labels and lbl.CONFIG_HASH not in labels


_STATES = {"Already exists": TransferState.EXISTS, "Layer already exists": TransferState.EXISTS,
           "Downloading": TransferState.DOWNLOADING, "Pushing": TransferState.UPLOADING,
           "Pull complete": TransferState.DONE, "Pushed": TransferState.DONE}


def _follow(ref: str, verb: str, line: object, progress: TransferProgress | None) -> None:
    """One line of the daemon's pull/push stream: raise its error, forward its layer progress."""
    if not isinstance(line, dict):
        return
    if line.get("error"):
        raise RuntimeFailure(f"{verb} {ref}: {line['error']}")
    state = _STATES.get(str(line.get("status", "")))
    if progress is not None and state is not None:
        detail = line.get("progressDetail") or {}
        progress(LayerProgress(ref, str(line.get("id", "")), state, int(detail.get("current") or 0),
                               int(detail.get("total") or 0)))


def _conforms(runtime: DockerRuntime) -> Backend:
    """Never called: mypy checks here that `DockerRuntime` is a complete `Backend`."""
    return runtime
