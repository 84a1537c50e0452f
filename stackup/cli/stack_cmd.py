"""The project verbs: `up`, `down`, `plan`, `graph`.

Each follows the four stages: load the stack (spec), observe the engine (runtime), reconcile
(planner, pure), execute (planner + runtime). This module only wires them and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli import masking
from stackup.cli.context import GlobalOptions
from stackup.cli.output import warn, write
from stackup.cli.plan_cmd import PlanFormat, graph_command, plan_command
from stackup.errors import UsageError
from stackup.planner.options import recreate_policies

if TYPE_CHECKING:
    from stackup.api.stack import Stack
    from stackup.spec.loader import LoadedProject

def _scale(values: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in values or ():
        name, sep, count = item.partition("=")
        if not sep or not count.isdigit():
            raise UsageError(f'--scale expects SERVICE=NUM, got "{item}"')
        out[name] = int(count)
    return out


def up(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until services are running/healthy.")] = False,
    wait_timeout: Annotated[
        float, typer.Option("--wait-timeout", help="Seconds `up` may take to get every service ready.")
    ] = 300.0,
    force_recreate: Annotated[bool, typer.Option("--force-recreate")] = False,
    no_recreate: Annotated[bool, typer.Option("--no-recreate")] = False,
    always_recreate_deps: Annotated[bool, typer.Option("--always-recreate-deps")] = False,
    no_deps: Annotated[bool, typer.Option("--no-deps", help="Don't start linked services.")] = False,
    remove_orphans: Annotated[bool, typer.Option("--remove-orphans")] = False,
    scale: Annotated[list[str] | None, typer.Option("--scale", help="SERVICE=NUM")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", "-t", help="Stop timeout (s).")] = None,
    abort_on_container_exit: Annotated[bool, typer.Option("--abort-on-container-exit")] = False,
    abort_on_container_failure: Annotated[bool, typer.Option("--abort-on-container-failure")] = False,
    exit_code_from: Annotated[str | None, typer.Option("--exit-code-from")] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Then watch develop.watch paths, as `stackup watch`.")
    ] = False,
    build: Annotated[bool, typer.Option("--build", help="Build images before starting containers.")] = False,
    no_build: Annotated[
        bool, typer.Option("--no-build", help="Don't build an image, even if it's missing.")
    ] = False,
    pull: Annotated[
        str | None, typer.Option("--pull", help="Pull images first: always, missing or never.")
    ] = None,
) -> None:
    """Create and start containers, as the plan says (`stackup plan` shows it first)."""
    from stackup.cli.progress import live, make_reporter

    opts: GlobalOptions = ctx.obj
    names = tuple(services or ())
    if exit_code_from:
        abort_on_container_exit = True
    if (detach or wait) and (abort_on_container_exit or abort_on_container_failure):
        flag = "--wait" if wait else "--detach"
        raise UsageError(f"--abort-on-container-exit/--exit-code-from cannot be combined with {flag}")
    if watch and (detach or wait):
        raise UsageError("--watch follows the stack in the foreground: it cannot be combined with -d/--wait")
    if pull is not None and pull not in ("always", "missing", "never"):
        raise UsageError(f'--pull expects always, missing or never, got "{pull}"')
    scales = _scale(scale)  # flag mistakes are reported before anything is loaded or started
    recreate_policies(
        force_recreate=force_recreate, no_recreate=no_recreate, always_recreate_deps=always_recreate_deps
    )
    stack = opts.stack(names)
    for message in stack.warnings:
        warn(message)
    reporter = make_reporter(opts.progress)
    with live(reporter):
        result = stack.up(
            names, wait=wait, wait_timeout=wait_timeout, force_recreate=force_recreate,
            no_recreate=no_recreate, always_recreate_deps=always_recreate_deps, no_deps=no_deps,
            remove_orphans=remove_orphans, scale=scales, pull=pull, reporter=reporter, build=build,
            no_build=no_build,
        )
    for message in result.outcome.warnings:
        warn(message)
    if wait:  # `--wait` implies `-d`, as in Compose
        return
    if detach:
        if not result.changed:
            count = len(stack.ps())
            sys.stderr.write(f" \u2714 {stack.name}: {count} containers up to date\n")
        if stack.loaded is not None and not _pulls_again(stack.loaded):
            _remember_noop(stack.loaded, stack if build else None)
        return
    if watch:
        from stackup.cli.attached import attach_watching

        raise typer.Exit(attach_watching(stack, names, stop_timeout=timeout))
    from stackup.cli.attached import attach

    code = attach(
        stack,
        names,
        abort_on_exit=abort_on_container_exit,
        abort_on_failure=abort_on_container_failure,
        exit_code_from=exit_code_from,
        stop_timeout=timeout,
    )
    raise typer.Exit(code)


def _pulls_again(loaded: LoadedProject) -> bool:
    """A service whose image a later `up` may pull (`always`, `daily`, ...): never a no-op."""
    policies = {s.pull_policy or "missing" for s in loaded.project.services.values()}
    return bool(policies - {"missing", "if_not_present", "never", "build"})


def _remember_noop(loaded: LoadedProject, built: Stack | None = None) -> None:
    """Record what a later identical `up -d` must find to skip loading (see `cli/fastpath.py`);
    for `up -d --build`, also the build requests (`built`'s specs) the engine must answer."""
    from stackup.cli.context import ARGV
    from stackup.cli.fastpath import discover, remember, split_up_argv

    global_args = split_up_argv(ARGV)
    if global_args is None or loaded.inputs is None or not loaded.inputs.complete:
        return
    stack_files, env_files = discover(global_args, Path.cwd())
    if stack_files != [str(f) for f in loaded.files]:
        return  # discovery depends on something the shortcut cannot see: never cache
    inputs = {"files": dict(loaded.inputs.files), "variables": dict(loaded.inputs.variables)}
    builds = None
    if built is not None:
        from stackup.runtime.native.build import request_of

        specs = built.build_specs()
        if any(spec.no_cache or spec.pull or spec.secret_values for spec in specs.values()):
            return  # never answered from the cache alone, or a secret's value would be written down
        builds = [(service, request_of(spec).model_dump(mode="json")) for service, spec in specs.items()]
    try:
        remember(global_args, project=loaded.project.name, stack_files=stack_files, env_files=env_files,
                 inputs=inputs, builds=builds)
    except OSError:
        return  # no snapshot to be had (e.g. a TCP Docker endpoint): the next `up` takes the full path


def down(
    ctx: typer.Context,
    volumes: Annotated[bool, typer.Option("--volumes", "-v", help="Remove named volumes too.")] = False,
    remove_orphans: Annotated[bool, typer.Option("--remove-orphans")] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", "-t", help="Stop timeout (s).")] = None,
) -> None:
    """Stop and remove the project's containers and networks (and volumes with -v)."""
    from stackup.cli.progress import live, make_reporter

    opts: GlobalOptions = ctx.obj
    del remove_orphans  # down always removes every container of the project, orphans included
    stack = opts.named()
    reporter = make_reporter(opts.progress)
    with live(reporter):
        stack.down(volumes=volumes, timeout=timeout, reporter=reporter)


def project_name(opts: GlobalOptions) -> str:
    """The project name, without validating the stack file: commands on running containers
    (`down`, `ps`, `logs`, ...) still work after the file was broken."""
    return opts.resolved_name()


def plan(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")] = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", help="text or json")] = PlanFormat.TEXT,
    force_recreate: Annotated[bool, typer.Option("--force-recreate")] = False,
    no_recreate: Annotated[bool, typer.Option("--no-recreate")] = False,
    no_deps: Annotated[bool, typer.Option("--no-deps")] = False,
    remove_orphans: Annotated[bool, typer.Option("--remove-orphans")] = False,
    scale: Annotated[list[str] | None, typer.Option("--scale", help="SERVICE=NUM")] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="kubernetes: diff against a cluster instead")
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="with --target")] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context (--target)")] = None,
) -> None:
    """Show what `up` would do and why; exit 0 when nothing changes, 2 when something would."""
    opts: GlobalOptions = ctx.obj
    names = tuple(services or ())
    if target is not None:
        from stackup.cli import deploy_cmd

        try:
            chosen = deploy_cmd.Target(target)
        except ValueError:
            raise UsageError(f'unknown target "{target}" (kubernetes)') from None
        raise typer.Exit(deploy_cmd.plan_target(opts.load(names), chosen, namespace, context))
    scales = _scale(scale)
    recreate_policies(force_recreate=force_recreate, no_recreate=no_recreate)
    stack = opts.stack(names)
    masking.install(stack.secret_values())  # an `old -> new` may show what a container was given
    for message in stack.warnings:
        warn(message)
    result = stack.plan(
        names, force_recreate=force_recreate, no_recreate=no_recreate, no_deps=no_deps,
        remove_orphans=remove_orphans, scale=scales,
    )
    raise typer.Exit(plan_command(result, fmt))


def graph(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="text, dot, mermaid or json")] = "text",
) -> None:
    """Print the service dependency graph, with each edge's condition."""
    from stackup.planner.graph import GraphFormat

    opts: GlobalOptions = ctx.obj
    try:
        chosen = GraphFormat(fmt)
    except ValueError:
        raise UsageError(f'unknown graph format "{fmt}" (text, dot, mermaid, json)') from None
    write(graph_command(opts.load().project, chosen))


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("plan")(plan)
    app.command("graph")(graph)

