"""`stackup login [SERVER]` and `stackup logout [SERVER]`, as `docker login/logout` behave.

Credentials are checked against the registry before they are saved in Docker's config.json (or its
credential helper), so `stackup` and `docker` share logins. The default server is Docker Hub.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stackup.cli.output import warn, write
from stackup.errors import UsageError


def login_cmd(
    server: Annotated[str, typer.Argument(help="Registry host[:port]; Docker Hub if omitted.")] = "",
    username: Annotated[str | None, typer.Option("--username", "-u", help="User name.")] = None,
    password: Annotated[
        str | None, typer.Option("--password", "-p", help="Password (prefer --password-stdin).")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Log in to a registry."""
    from stackup.registry.login import login

    if password_stdin:
        if password:
            raise UsageError("--password and --password-stdin cannot be combined")
        if not username:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        warn("using --password on the command line is insecure; use --password-stdin")
    if not username:
        username = typer.prompt("Username")
    if not password:
        password = typer.prompt("Password", hide_input=True)
    host = login(server, username, password)
    write(f"Login Succeeded ({host})")


def logout_cmd(
    server: Annotated[str, typer.Argument(help="Registry host[:port]; Docker Hub if omitted.")] = "",
) -> None:
    """Log out from a registry (forget its saved credentials)."""
    from stackup.registry.login import logout, registry_host

    host = registry_host(server)
    write(f"Removing login credentials for {host}" if logout(server) else f"Not logged in to {host}")


def register(app: typer.Typer) -> None:
    app.command("login")(login_cmd)
    app.command("logout")(logout_cmd)
