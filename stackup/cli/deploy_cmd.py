"""`stackup deploy --target kubernetes|swarm`, `stackup render --target kubernetes`, and the
`--target` part of `stackup plan`: the stack on an existing cluster (`stackup.deploy`).

Functions, not a typer app: the integrator registers `deploy` and `render` with `register(app)`
and calls `plan_target` from `plan` when `--target` is given. Warnings for keys the target
cannot express go to stderr with `file:line`, before anything is applied.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli.context import GlobalOptions
from stackup.cli.output import warn, write
from stackup.deploy.kubernetes.volume_workload import VolumeWorkload
from stackup.errors import UsageError

if TYPE_CHECKING:
    from stackup.deploy.kubernetes.cluster import Cluster
    from stackup.deploy.kubernetes.render import Rendering
    from stackup.spec.loader import LoadedProject

EXIT_NO_CHANGES = 0
EXIT_CHANGES = 2


class Target(StrEnum):
    KUBERNETES = "kubernetes"
    SWARM = "swarm"


TargetOpt = Annotated[Target, typer.Option("--target", help="kubernetes or swarm")]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Kubernetes namespace (default: the project name)")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Validate on the server, change nothing")]
PushOpt = Annotated[bool, typer.Option("--push", help="Push the images of services with `build` first")]
VolumesOpt = Annotated[bool, typer.Option("--volumes", "-v", help="With --down on swarm: named volumes too")]
MeshOpt = Annotated[
    bool,
    typer.Option("--routing-mesh/--no-routing-mesh",
                 help="Swarm: without the mesh (nodes with no IPVS), dnsrr endpoints and host-mode ports"),
]
WorkloadOpt = Annotated[
    VolumeWorkload,
    typer.Option("--volume-workload", help="statefulset, or deployment (what `podman kube play` runs)"),
]


def _rendering(loaded: LoadedProject, namespace: str | None, workload: VolumeWorkload) -> Rendering:
    from stackup.deploy.kubernetes.render import translate

    for message in loaded.warnings:
        warn(message)
    rendering = translate(loaded.project, namespace, loaded.source_map, environment=loaded.environment,
                          referenced_files=loaded.referenced_files, volume_workload=workload)
    for problem in rendering.warnings:
        warn(str(problem))
    return rendering


def _cluster(loaded: LoadedProject, namespace: str | None, context: str | None) -> Cluster:
    from stackup.deploy.kubernetes.cluster import Cluster
    from stackup.deploy.kubernetes.render import default_namespace

    return Cluster.from_kubeconfig(namespace or default_namespace(loaded.project), context)


def render(
    ctx: typer.Context,
    target: TargetOpt = Target.KUBERNETES,
    namespace: NamespaceOpt = None,
    volume_workload: WorkloadOpt = VolumeWorkload.STATEFULSET,
) -> None:
    """Print the stack as Kubernetes manifests (multi-document YAML), warnings on stderr."""
    if target is not Target.KUBERNETES:
        raise UsageError("render supports --target kubernetes only (a Swarm stack is the stack file itself)")
    opts: GlobalOptions = ctx.obj
    write(_rendering(opts.load(), namespace, volume_workload).to_yaml().rstrip("\n"))


def plan_target(loaded: LoadedProject, target: Target, namespace: str | None = None,
                context: str | None = None,
                volume_workload: VolumeWorkload = VolumeWorkload.STATEFULSET) -> int:
    """`plan --target kubernetes`: the field-by-field changes a deploy would make; 0 or 2."""
    if target is not Target.KUBERNETES:
        raise UsageError("plan supports --target kubernetes only")
    from stackup.deploy.kubernetes.sync import plan

    rendering = _rendering(loaded, namespace, volume_workload)
    result = plan(_cluster(loaded, namespace, context), loaded.project.name, rendering.manifests())
    write(str(result))
    return EXIT_CHANGES if result else EXIT_NO_CHANGES


def deploy(
    ctx: typer.Context,
    target: TargetOpt,
    namespace: NamespaceOpt = None,
    context: ContextOpt = None,
    dry_run: DryRunOpt = False,
    down: Annotated[bool, typer.Option("--down", help="Remove what stackup deployed")] = False,
    push: PushOpt = False,
    volumes: VolumesOpt = False,
    volume_workload: WorkloadOpt = VolumeWorkload.STATEFULSET,
    routing_mesh: MeshOpt = True,
) -> None:
    """Deploy the stack to Kubernetes (server-side apply) or Docker Swarm; `--down` removes it."""
    opts: GlobalOptions = ctx.obj
    if target is Target.SWARM and (namespace or context or dry_run):
        raise UsageError("--namespace, --context and --dry-run apply to --target kubernetes only")
    if push and dry_run:
        warn("--push is left out with --dry-run: a dry run changes nothing, in the registry either")
    elif push and not down:
        _push(opts)
    loaded = opts.load()
    if target is Target.KUBERNETES:
        _kubernetes(loaded, namespace, context, dry_run=dry_run, down=down, workload=volume_workload)
    else:
        _swarm(loaded, down=down, volumes=volumes, routing_mesh=routing_mesh)


def _kubernetes(loaded: LoadedProject, namespace: str | None, context: str | None, *, dry_run: bool,
                down: bool, workload: VolumeWorkload) -> None:
    from stackup.deploy.kubernetes import sync

    cluster = _cluster(loaded, namespace, context)
    suffix = " (dry run)" if dry_run else ""
    if down:
        for ref in sync.down(cluster, loaded.project.name, dry_run):
            write(f"deleted {ref}{suffix}")
        return
    rendering = _rendering(loaded, namespace, workload)
    result = sync.deploy(cluster, loaded.project.name, rendering.manifests(), dry_run)
    write(str(result) + suffix)


def _swarm(loaded: LoadedProject, *, down: bool, volumes: bool, routing_mesh: bool) -> None:
    import docker  # type: ignore[import-untyped]

    from stackup.deploy.swarm import SwarmDeploy, remove_stack
    from stackup.deploy.swarm_spec import SwarmOptions

    client = docker.from_env()
    try:
        if down:
            for line in remove_stack(client, loaded.project.name, volumes=volumes):
                write(f"removed {line}")
            return
        for message in loaded.warnings:
            warn(message)
        run = SwarmDeploy(client, loaded.project, loaded.source_map, loaded.environment,
                          loaded.referenced_files, options=SwarmOptions(routing_mesh=routing_mesh))
        actions = run.run()
        for problem in run.warnings:
            warn(str(problem))
        write("\n".join(actions) or "no changes")
    finally:
        client.close()


def _push(opts: GlobalOptions) -> None:
    """Push the images of services built here (`build:` and `image:`) from stackup's own store
    with its registry client (`Stack.push`), so the names the manifests use are in the registry.
    A service built without `image:` gets a warning: the cluster could not pull its local name."""
    with opts.stack() as stack:
        results = stack.push()
        services = stack.project.services
    for item in results:
        if item.error:
            warn(item.error)
        elif item.skipped:
            for name in item.services:
                if services[name].build is not None:
                    warn(f"services.{name}: built here without `image:`, so nothing is pushed and the "
                         f"cluster cannot pull {item.ref!r}; name it in a registry the cluster reaches "
                         "(`image: REGISTRY/NAME:TAG`)")
        else:
            write(f"pushed {item.ref} {item.image}")


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("render")(render)
