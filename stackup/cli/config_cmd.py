"""`stackup config` and `stackup schema`: the canonical model, and the JSON Schema for editors."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from stackup.cli.context import GlobalOptions
from stackup.cli.output import dump_json, dump_yaml, warn, write


class Format(StrEnum):
    YAML = "yaml"
    JSON = "json"


def config(
    ctx: typer.Context,
    services_args: Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.YAML,
    services: Annotated[bool, typer.Option("--services", help="Print the service names.")] = False,
    volumes: Annotated[bool, typer.Option("--volumes", help="Print the volume names.")] = False,
    networks: Annotated[bool, typer.Option("--networks", help="Print the network names.")] = False,
    profiles: Annotated[bool, typer.Option("--profiles", help="Print the profile names.")] = False,
    hash_: Annotated[
        str | None, typer.Option("--hash", help="Print the config hash of SERVICE ('*' for all).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only validate.")] = False,
) -> None:
    """Validate the stack and print its canonical model (long syntax, interpolated, merged)."""
    opts: GlobalOptions = ctx.obj
    names = tuple(services_args or ())
    loaded = opts.load(services=names)
    for message in loaded.warnings:
        warn(message)
    project = loaded.project
    if quiet:
        return
    if services:
        write("\n".join(sorted(project.services)))
        return
    if volumes:
        write("\n".join(sorted(project.volumes)))
        return
    if networks:
        write("\n".join(sorted(project.networks)))
        return
    if profiles:
        write("\n".join(sorted(loaded.all_profiles)))
        return
    if hash_ is not None:
        from stackup.planner.hashing import service_hash

        wanted = sorted(project.services) if hash_ == "*" else hash_.split(",")
        lines = []
        for name in wanted:
            svc = project.services.get(name)
            if svc is None:
                from stackup.errors import NotFound

                raise NotFound(f"no such service: {name}")
            lines.append(f"{name} {service_hash(svc, loaded.referenced_files).digest}")
        write("\n".join(lines))
        return
    from stackup.spec.secretenv import mask_canonical
    from stackup.spec.validate import canonical

    data = mask_canonical(canonical(project))
    if names:
        data["services"] = {k: v for k, v in data.get("services", {}).items() if k in names}
    write(dump_json(data) if fmt is Format.JSON else dump_yaml(data))


def schema() -> None:
    """Print the JSON Schema of stackup's stack-file model (for editor completion)."""
    from stackup.spec.schema import project_json_schema

    write(dump_json(project_json_schema()))


def register(app: typer.Typer) -> None:
    app.command("config")(config)
    app.command("schema")(schema)
