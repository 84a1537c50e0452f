"""`stackup deploy --target kubernetes|swarm`, `stackup render --target kubernetes`, and the
`--target` part of `stackup plan`: the stack on an existing cluster (`Stack.render`, `Stack.plan_cluster`,
`Stack.deploy`; this module parses flags and prints).

Functions, not a typer app: the integrator registers `deploy` and `render` with `register(app)`
and calls `plan_target` from `plan` when `--target` is given. Warnings for keys the target
cannot express go to stderr with `file:line`, before anything is applied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from stackup.api.deploying import DeployTarget as Target
from stackup.api.deploying import VolumeWorkload
from stackup.cli.context import GlobalOptions
from stackup.cli.output import warn, write

if TYPE_CHECKING:
    from stackup.api.stack import Stack
    from stackup.spec.loader import LoadedProject

__all__ = ["EXIT_CHANGES", "EXIT_NO_CHANGES", "Target", "deploy", "plan_target", "register", "render"]

EXIT_NO_CHANGES = 0
EXIT_CHANGES = 2

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


def _stack(source: GlobalOptions | LoadedProject) -> Stack:
    from stackup.api.stack import Stack

    if isinstance(source, GlobalOptions):
        return Stack.for_cluster(source.load_options(), runtime=source.runtime)
    return Stack.for_cluster(source)


def render(
    ctx: typer.Context,
    target: TargetOpt = Target.KUBERNETES,
    namespace: NamespaceOpt = None,
    volume_workload: WorkloadOpt = VolumeWorkload.STATEFULSET,
) -> None:
    """Print the stack as Kubernetes manifests (multi-document YAML), warnings on stderr."""
    with _stack(ctx.obj) as stack:
        text = stack.render(target, namespace=namespace, volume_workload=volume_workload, on_warning=warn)
    write(text.rstrip("\n"))


def plan_target(loaded: LoadedProject, target: Target, namespace: str | None = None,
                context: str | None = None,
                volume_workload: VolumeWorkload = VolumeWorkload.STATEFULSET) -> int:
    """`plan --target kubernetes`: the field-by-field changes a deploy would make; 0 or 2."""
    with _stack(loaded) as stack:
        result = stack.plan_cluster(target, namespace=namespace, context=context,
                                    volume_workload=volume_workload, on_warning=warn)
    write(result.text)
    return EXIT_CHANGES if result.changed else EXIT_NO_CHANGES


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
    with _stack(ctx.obj) as stack:
        done = stack.deploy(target, namespace=namespace, context=context, dry_run=dry_run, down=down,
                            push=push, volumes=volumes, volume_workload=volume_workload,
                            routing_mesh=routing_mesh, on_warning=warn)
    for line in done.lines:
        write(line)


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("render")(render)
