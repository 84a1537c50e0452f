"""`stackup run SERVICE [COMMAND...]`: a one-off container of a service (tests, migrations, shells).

Its dependencies are brought up first through the normal plan (unless `--no-deps`); the one-off
container is labelled `oneoff` so `up` never treats it as a replica or an orphan, publishes no
ports (as Compose, without `--service-ports`), and its exit code becomes stackup's.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stackup.cli.context import GlobalOptions
from stackup.cli.output import warn


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
    from stackup.cli.progress import make_reporter
    from stackup.keyvalue import parse_assignments

    opts: GlobalOptions = ctx.obj
    stack = opts.stack((service,))
    for message in stack.warnings:
        warn(message)
    result = stack.run(
        service, command, env=parse_assignments(env or (), what="--env"), entrypoint=entrypoint,
        user=user, workdir=workdir, name=name, no_deps=no_deps, detach=detach, rm=rm,
        output=sys.stdout, reporter=make_reporter(opts.progress),
    )
    if detach:
        sys.stdout.write(f"{result.container}\n")
        return
    raise typer.Exit(result.exit_code or 0)


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False})(run)
