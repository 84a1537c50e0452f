"""`stackup dockerfile parse PATH`: how stackup's builder reads a Dockerfile.

The output is BuildKit's parser-test notation, one instruction a line (`(run "echo hi")`), so a
parse can be compared with BuildKit's byte for byte. `--check` also runs the instruction checks
(flags, argument counts, what the builder refuses) that a build would run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stackup.cli.output import warn, write

dockerfile_app = typer.Typer(help="Inspect Dockerfiles as the builder reads them.", no_args_is_help=True)


@dockerfile_app.command("parse")
def parse(
    path: Annotated[Path, typer.Argument(help="The Dockerfile.")],
    check: Annotated[
        bool, typer.Option("--check", help="Also check every instruction as a build would.")
    ] = False,
) -> None:
    """Print the parse of a Dockerfile, one instruction a line, in BuildKit's test notation."""
    from stackup.build.dockerfile import parse_file

    result = parse_file(path)
    for warning in result.warnings:
        warn(f"{result.path}:{warning.line}: {warning.message}")
    if check:
        from stackup.build.dockerfile import parse_instructions

        parse_instructions(result)
    write(result.dump())


def register(app: typer.Typer) -> None:
    app.add_typer(dockerfile_app, name="dockerfile")
