"""`stackup run SERVICE [COMMAND...]`: a one-off container of a service (tests, migrations, shells).

Its dependencies are brought up first through the normal plan (unless `--no-deps`); the one-off
container is labelled `oneoff` so `up` never treats it as a replica or an orphan, publishes no
ports (as Compose, without `--service-ports`), and its exit code becomes stackup's.
"""

from __future__ import annotations

import dataclasses
import secrets
import sys
from typing import Annotated

import typer

from stackup.cli.context import GlobalOptions
from stackup.cli.output import warn
from stackup.errors import NotFound, RuntimeFailure


def run(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument()],
    command: Annotated[list[str] | None, typer.Argument(metavar="[COMMAND] [ARGS]...")] = None,
    rm: Annotated[bool, typer.Option("--rm", help="Remove the container when it exits.")] = False,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background.")] = False,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    entrypoint: Annotated[str | None, typer.Option("--entrypoint")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    workdir: Annotated[str | None, typer.Option("--workdir", "-w")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Container name.")] = None,
    no_deps: Annotated[bool, typer.Option("--no-deps", help="Don't start linked services.")] = False,
) -> None:
    """Run a one-off command in a new container of SERVICE; exit with its exit code."""
    from stackup.cli.plan_cmd import reconcile_options
    from stackup.cli.stack_cmd import runtime
    from stackup.planner.execute import execute
    from stackup.planner.observed import observe
    from stackup.planner.options import ReconcileOptions
    from stackup.planner.reconcile import reconcile
    from stackup.planner.specs import container_spec
    from stackup.runtime import labels as lbl

    opts: GlobalOptions = ctx.obj
    loaded = opts.load(services=(service,))
    project = loaded.project
    if service not in project.services:
        raise NotFound(f"no such service: {service}")
    for message in loaded.warnings:
        warn(message)
    rt = runtime()
    deps = tuple(sorted(project.services[service].depends_on))
    if deps and not no_deps:
        options = reconcile_options(loaded, ReconcileOptions(services=deps))
        plan = reconcile(project, observe(rt, project.name), options)
        execute(plan, rt, parallel=opts.parallel).raise_for_failures()
    token = secrets.token_hex(6)
    base = container_spec(
        project, service, project.services[service], 1,
        labels={lbl.PROJECT: project.name, lbl.SERVICE: service, lbl.ONEOFF: lbl.TRUE},
        referenced_files=loaded.referenced_files,
    )
    extra = dict(item.partition("=")[::2] for item in env or ())
    spec = dataclasses.replace(
        base,
        name=name or f"{project.name}-{service}-run-{token}",
        command=tuple(command) if command else base.command,
        entrypoint=(entrypoint,) if entrypoint else base.entrypoint,
        environment={**base.environment, **extra},
        user=user or base.user,
        working_dir=workdir or base.working_dir,
        ports=(),
        restart="no",
    )
    info = rt.create_container(spec)
    rt.start_container(info.id)
    if detach:
        sys.stdout.write(f"{spec.name}\n")
        return
    try:
        for line in rt.client.logs(info.id, follow=True):
            sys.stdout.write(line.text + "\n")
            sys.stdout.flush()
        code = rt.client.wait_container(info.id)
    except KeyboardInterrupt:
        rt.stop_container(info.id)
        code = 130
    finally:
        if rm:
            try:
                rt.remove_container(info.id)
            except RuntimeFailure as exc:
                warn(f"could not remove {spec.name}: {exc}")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False})(run)
