"""argv -> library calls -> exit codes. The typer app and the global options.

Commands live in small modules (`config_cmd`, `plan_cmd`, `engine_cmd`, `stack_cmd`, ...); each
registers its commands on `app` when imported here. Errors: every `StackupError` becomes
`error: <message>` lines and its `exit_code`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stackup import __version__
from stackup.cli.context import ARGV, GlobalOptions

app = typer.Typer(
    name="stackup",
    help="Declarative environments from Compose files: plan, up, down, on a native engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stackup {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    file: Annotated[
        list[Path] | None,
        typer.Option("--file", "-f", help="Stack file (repeatable; later files override earlier)."),
    ] = None,
    project_name: Annotated[str | None, typer.Option("--project-name", "-p", help="Project name.")] = None,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="Enable a profile (repeatable).")
    ] = None,
    env_file: Annotated[
        list[Path] | None, typer.Option("--env-file", help="Environment file (repeatable).")
    ] = None,
    project_directory: Annotated[
        Path | None, typer.Option("--project-directory", help="Base directory of the project.")
    ] = None,
    progress: Annotated[
        str, typer.Option("--progress", help="Progress output: auto, tty, plain, json, quiet.")
    ] = "auto",
    parallel: Annotated[
        int | None, typer.Option("--parallel", help="Maximum operations in parallel.")
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option("--runtime", help="native (stackup's engine) or docker (a Docker/Podman daemon)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", "-v", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = GlobalOptions(
        files=tuple(file or ()),
        project_name=project_name,
        profiles=tuple(profile or ()),
        env_files=tuple(env_file or ()),
        project_directory=project_directory,
        progress=progress,
        parallel=parallel,
        runtime=runtime,
    )


@app.command("version")
def version_cmd(short: Annotated[bool, typer.Option("--short", help="Only the number.")] = False) -> None:
    """Show the stackup version."""
    typer.echo(__version__ if short else f"stackup {__version__}")


_registered: list[bool] = []


def _register() -> None:
    if _registered:
        return
    _registered.append(True)
    from stackup.cli import (
        build_cmd,
        config_cmd,
        containers_cmd,
        cp_cmd,
        deploy_cmd,
        dockerfile_cmd,
        engine_cmd,
        imageio_cmd,
        login_cmd,
        network_cmd,
        pull_cmd,
        run_cmd,
        stack_cmd,
        system_cmd,
        watch_cmd,
    )

    modules = (
        config_cmd, stack_cmd, run_cmd, containers_cmd, cp_cmd, engine_cmd, imageio_cmd, network_cmd,
        dockerfile_cmd, deploy_cmd, login_cmd, build_cmd, watch_cmd, pull_cmd, system_cmd,
    )
    for module in modules:
        module.register(app)


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage errors: click's own classes, or typer's vendored copy (typer >= 0.16 ships
    click inside as `typer._click`, whose exceptions derive from `typer.exceptions.TyperException`)."""
    out: list[type[Exception]] = []
    try:
        import click

        out.append(click.ClickException)
    except ImportError:
        pass
    vendored = getattr(typer.exceptions, "TyperException", None)
    if isinstance(vendored, type) and issubclass(vendored, Exception):
        out.append(vendored)
    return tuple(out)


def run(args: list[str]) -> int:
    """Run the CLI on `args`; return the process exit code."""
    from stackup.cli.output import error
    from stackup.errors import StackFailed, StackupError

    _register()
    ARGV[:] = args
    try:
        result = app(args=args, prog_name="stackup", standalone_mode=False)
    except StackupError as exc:
        from stackup.cli.output import warn
        from stackup.spec.errors import SpecError

        if isinstance(exc, SpecError):
            for message in exc.warnings:
                warn(message)
        error(str(exc))
        if isinstance(exc, StackFailed):
            from stackup.cli.diagnose import show_diagnoses

            show_diagnoses(exc)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        error("aborted")
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, _usage_errors()):
            exc.show()  # type: ignore[attr-defined]
            return int(exc.exit_code)  # type: ignore[attr-defined]
        raise
    # without standalone mode, click returns a command's `typer.Exit(code)` instead of raising it
    return result if isinstance(result, int) else 0
