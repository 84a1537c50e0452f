"""Planning the shared resources services need: networks, volumes and images.

Only what the selected services use is planned (`up api --no-deps` does not create the networks
of services it will not start). External networks and volumes are never created: a missing one is
a `PlanError` up front, rather than a failure halfway through `execute`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from stackup.errors import PlanError
from stackup.planner.observed import Observed
from stackup.planner.plan import Operation, OpKind, ResourceKind
from stackup.planner.pulls import PullPolicy, image_key, last_pulled, local_keys, parse_policy
from stackup.planner.specs import (
    image_ref,
    network_name,
    service_networks,
    service_volume_keys,
    volume_name,
)
from stackup.runtime import labels as lbl
from stackup.runtime.base import BuildSpec, NetworkSpec, PullSpec, VolumeSpec

if TYPE_CHECKING:
    from stackup.spec.models import Project, Service
    from stackup.spec.models_parts import FileReference


def plan_networks(project: Project, observed: Observed, services: Sequence[str]) -> dict[str, Operation]:
    """One operation per network key the services join: create when absent, else nothing."""
    keys = sorted({k for s in services for k in service_networks(project.services[s])})
    out: dict[str, Operation] = {}
    for key in keys:
        net = project.networks.get(key)
        name = network_name(project, key)
        exists = name in observed.networks
        if net is not None and net.external:
            if not exists:
                raise PlanError(f"network {name} declared as external, but could not be found")
            out[key] = Operation(OpKind.NOTHING, ResourceKind.NETWORK, name, cause="external")
        elif exists:
            out[key] = Operation(OpKind.NOTHING, ResourceKind.NETWORK, name, cause="exists")
        else:
            labels = {lbl.PROJECT: project.name, lbl.NETWORK: key, **(net.labels if net else {})}
            subnets = tuple(p.subnet for p in (net.ipam.config if net and net.ipam else []) if p.subnet)
            spec = NetworkSpec(
                name=name,
                labels=labels,
                driver=(net.driver if net else None) or "bridge",
                internal=bool(net and net.internal),
                enable_ipv6=bool(net and net.enable_ipv6),
                subnets=subnets,
            )
            out[key] = Operation(OpKind.CREATE, ResourceKind.NETWORK, name, cause="not found", spec=spec)
    return out


def plan_volumes(project: Project, observed: Observed, services: Sequence[str]) -> dict[str, Operation]:
    """One operation per named volume the services mount: create when absent, else nothing."""
    keys = sorted({k for s in services for k in service_volume_keys(project, project.services[s])})
    out: dict[str, Operation] = {}
    for key in keys:
        vol = project.volumes[key]
        name = volume_name(project, key)
        exists = name in observed.volumes
        if vol.external:
            if not exists:
                raise PlanError(f"volume {name} declared as external, but could not be found")
            out[key] = Operation(OpKind.NOTHING, ResourceKind.VOLUME, name, cause="external")
        elif exists:
            out[key] = Operation(OpKind.NOTHING, ResourceKind.VOLUME, name, cause="exists")
        else:
            spec = VolumeSpec(
                name=name,
                labels={lbl.PROJECT: project.name, lbl.VOLUME: key, **vol.labels},
                driver=vol.driver or "local",
                driver_opts=dict(vol.driver_opts),
            )
            out[key] = Operation(OpKind.CREATE, ResourceKind.VOLUME, name, cause="not found", spec=spec)
    return out


def plan_images(
    project: Project, observed: Observed, services: Sequence[str], *, build: bool = False,
    no_build: bool = False, pull: str | None = None, refreshed: frozenset[str] = frozenset(),
    now: datetime | None = None,
) -> dict[str, Operation]:
    """Pull or build operations keyed by image reference; images already present get none.

    `pull_policy` decides (Compose semantics, see `pulls.py`): `build` or `up --build` rebuilds,
    `always` pulls, `never` requires the image locally, a period (`daily`) pulls a stale one,
    anything else fetches only when missing, by building when the service has a `build` section
    and pulling otherwise. `pull` (`up --pull`) overrides every service's policy; `refreshed`
    holds references pulled moments ago by this same `up`, which satisfy any policy. Services
    sharing a reference share one operation; the first service by name decides how it is fetched.
    `no_build` (`up --no-build`) never builds: a missing image of a service with a `build`
    section is an error.
    """
    local = local_keys(observed.images)
    out: dict[str, Operation] = {}
    for name in sorted(services):
        service = project.services[name]
        ref = image_ref(project, name, service)
        if ref in out:
            continue
        key = image_key(ref)
        present = key in local
        if no_build and service.build is not None:
            if not present:
                raise PlanError(f"image {ref} of service {name} is not present and --no-build was given; "
                                f"build it with `stackup build {name}`")
            continue
        if key in {image_key(r) for r in refreshed}:
            continue
        pulled = last_pulled(ref, observed.pulled) if present else None
        op = _image_op(project, ref, service, present, build, pull=pull, pulled=pulled, now=now)
        if op is not None:
            out[ref] = op
    return out


def _image_op(project: Project, ref: str, service: Service, present: bool, build: bool, *,
              pull: str | None, pulled: datetime | None, now: datetime | None) -> Operation | None:
    policy, period = parse_policy(pull or service.pull_policy, service.pull_refresh_after)
    if service.build is not None and (build or policy is PullPolicy.BUILD):
        return _build(project, ref, service, "--build" if build else "pull_policy: build")
    spec = PullSpec(ref, service.platform)
    source = "--pull" if pull else "pull_policy"
    if policy is PullPolicy.ALWAYS:
        return Operation(OpKind.PULL, ResourceKind.IMAGE, ref, cause=f"{source}: always", spec=spec)
    if present:
        stale = period is not None and pulled is not None and now is not None and now - pulled >= period
        if policy is PullPolicy.PERIODIC and stale:
            assert pulled is not None
            cause = f"{source}: {pull or service.pull_policy} (last pulled {pulled:%Y-%m-%d %H:%M})"
            return Operation(OpKind.PULL, ResourceKind.IMAGE, ref, spec=spec, cause=cause)
        return None
    if service.build is not None:
        return _build(project, ref, service, "not found")
    if policy is PullPolicy.NEVER:
        raise PlanError(f"image {ref} is not present and {source} is never; pull it first "
                        f"(`stackup pull`) or change {source}")
    return Operation(OpKind.PULL, ResourceKind.IMAGE, ref, cause="not found", spec=spec)


def _build(project: Project, ref: str, service: Service, cause: str) -> Operation:
    spec = build_spec(project, ref, service)
    return Operation(OpKind.BUILD, ResourceKind.IMAGE, ref, cause=cause, spec=spec)


def build_spec(
    project: Project, ref: str, service: Service, environment: Mapping[str, str] | None = None
) -> BuildSpec:
    """The build of a service with a `build` section, its result tagged `ref`. `environment`
    (the load's interpolation environment) gives the values of secrets from the environment."""
    assert service.build is not None
    b = service.build
    return BuildSpec(
        tag=ref,
        context=b.context,
        dockerfile=b.dockerfile or "Dockerfile",
        args={k: v for k, v in b.args.items() if v is not None},
        target=b.target,
        labels=dict(b.labels),
        dockerfile_inline=b.dockerfile_inline,
        tags=tuple(b.tags),
        no_cache=b.no_cache,
        pull=b.pull,
        secrets=_build_secrets(project, b.secrets),
        secret_values=_environment_secrets(project, b.secrets, environment or {}),
        additional_contexts=dict(b.additional_contexts),
        network=b.network,
        extra_hosts={host: addresses[0] for host, addresses in b.extra_hosts.items() if addresses},
        shm_size=int(b.shm_size) if b.shm_size is not None else None,
    )


def _environment_secrets(
    project: Project, refs: Sequence[FileReference], environment: Mapping[str, str]
) -> dict[str, str]:
    """Build secrets by id -> value, for top-level secrets with `environment: VAR`."""
    out: dict[str, str] = {}
    for ref in refs:
        secret = project.secrets.get(ref.source)
        if secret is None or not secret.environment:
            continue
        if secret.environment not in environment:
            raise PlanError(f"secrets.{ref.source}.environment: the variable {secret.environment} is not "
                             f"set (the build of a service reads it); set it or use `file:`")
        out[ref.target or ref.source] = environment[secret.environment]
    return out


def _build_secrets(project: Project, refs: Sequence[FileReference]) -> dict[str, str]:
    """Build secrets by id -> the host file of the top-level secret (file-based secrets only)."""
    out: dict[str, str] = {}
    for ref in refs:
        secret = project.secrets.get(ref.source)
        if secret is not None and secret.file:
            out[ref.target or ref.source] = secret.file
    return out
