"""`stackup system dial-stdio`: the engine's socket on stdin/stdout, for `STACKUP_HOST=ssh://`.

Its usual caller is the client's ssh; `entry.py` runs it before the typer app is imported, since
every ssh connection pays for this process's start. This module is what `--help` shows.
"""

from __future__ import annotations

import typer

system_app = typer.Typer(help="Plumbing for remote clients.", no_args_is_help=True)


@system_app.command("dial-stdio")
def dial_stdio_cmd() -> None:
    """Relay stdin and stdout to this machine's engine (run by `ssh` for STACKUP_HOST=ssh://)."""
    from stackup.runtime.native.dialstdio import dial_stdio

    raise typer.Exit(dial_stdio())


def register(app: typer.Typer) -> None:
    app.add_typer(system_app, name="system")
