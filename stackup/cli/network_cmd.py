"""`stackup network ls|inspect|rm|prune` and `stackup doctor`: the engine's networks and leftovers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli.output import out, write

if TYPE_CHECKING:
    from stackup.runtime.native.client import EngineClient

network_app = typer.Typer(help="Manage the engine's networks.", no_args_is_help=True)


def _client() -> EngineClient:
    from stackup.runtime.native.launcher import ensure_engine

    return ensure_engine()


@network_app.command("ls")
def network_ls(fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table") -> None:
    """List networks."""
    networks = _client().list_networks()
    if fmt == "json":
        write(json.dumps([n.model_dump(mode="json") for n in networks], indent=2))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "SUBNET", "GATEWAY", "INTERNAL", "PROJECT"):
        table.add_column(col)
    for n in networks:
        cfg = n.config
        table.add_row(
            n.name, str(cfg.get("subnet", "")), str(cfg.get("gateway", "")),
            str(bool(cfg.get("internal", False))).lower(), n.labels.get("io.stackup.project", ""),
        )
    out().print(table)


@network_app.command("inspect")
def network_inspect(names: Annotated[list[str], typer.Argument(metavar="NETWORK...")]) -> None:
    """Show networks as JSON."""
    client = _client()
    write(json.dumps([client.inspect_network(n).model_dump(mode="json") for n in names], indent=2))


@network_app.command("rm")
def network_rm(names: Annotated[list[str], typer.Argument(metavar="NETWORK...")]) -> None:
    """Remove networks (refused while containers use them)."""
    client = _client()
    for name in names:
        client.remove_network(name)
        write(name)


@network_app.command("prune")
def network_prune() -> None:
    """Remove networks no container uses."""
    for name in _client().prune_networks().removed:
        write(f"deleted {name}")


def doctor(fix: Annotated[bool, typer.Option("--fix", help="Remove what no project owns.")] = False) -> None:
    """List bridges, veths, network namespaces and firewall state stackup made that nothing owns."""
    leftovers = _client().doctor(fix=fix)
    if not leftovers:
        write("nothing left behind")
        return
    for item in leftovers:
        state = "removed" if item.removed else "foreign: left alone" if item.foreign else "found"
        write(f"{item.kind:8} {item.name:24} {state}")
    if not fix and any(not item.foreign for item in leftovers):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(network_app, name="network")
    app.command("doctor")(doctor)
