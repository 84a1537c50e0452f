"""`stackup [global options] down [-v] [--remove-orphans] [-t N]` without the typer app.

`down` is on the critical path of every dev loop and CI job, and with the engine's side at
tens of ms per container, building the typer app (importing typer and every command module,
then click's parameters for ~60 commands: about 0.1 s of CPU) was a quarter of the CLI's own
cost of a 30-service `down`. This parses the plain spellings of `down`'s and the global options
itself and calls the same code as `stack_cmd.down`; anything else (help, an unknown or
malformed option, a combined short flag, a value that looks like an option) returns None and
takes the typer path, which reports usage errors as before. Failures end as `main.run` ends
them: the same messages and exit codes.
"""

from __future__ import annotations

from pathlib import Path

from stackup.cli.context import ARGV, GlobalOptions
from stackup.errors import StackupError

_MULTI = {"-f": "files", "--file": "files", "--profile": "profiles", "--env-file": "env_files"}
_SINGLE = {
    "-p": "project_name", "--project-name": "project_name", "--project-directory": "project_directory",
    "--progress": "progress", "--parallel": "parallel", "--runtime": "runtime",
}  # fmt: skip
_DOWN_FLAGS = {"-v": "volumes", "--volumes": "volumes", "--remove-orphans": "remove_orphans"}
_TIMEOUT = ("-t", "--timeout")


def parse_down(args: list[str]) -> tuple[GlobalOptions, bool, float | None] | None:
    """(global options, volumes, timeout) of a plain `down`; None for anything else."""
    multi: dict[str, list[str]] = {"files": [], "profiles": [], "env_files": []}
    single: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i] != "down":
        name, value, i = _option(args, i)
        if value is None:
            return None
        if name in _MULTI:
            multi[_MULTI[name]].append(value)
        elif name in _SINGLE:
            single[_SINGLE[name]] = value
        else:
            return None
    if i >= len(args):
        return None
    volumes = False
    timeout: float | None = None
    i += 1
    while i < len(args):
        arg = args[i]
        if arg in _DOWN_FLAGS:
            volumes = volumes or _DOWN_FLAGS[arg] == "volumes"
            i += 1
            continue
        name, value, i = _option(args, i)
        if value is None or name not in _TIMEOUT:
            return None
        try:
            timeout = float(value)
        except ValueError:
            return None
    try:
        parallel = int(single["parallel"]) if "parallel" in single else None
    except ValueError:
        return None
    directory = single.get("project_directory")
    options = GlobalOptions(
        files=tuple(Path(f) for f in multi["files"]),
        project_name=single.get("project_name"),
        profiles=tuple(multi["profiles"]),
        env_files=tuple(Path(f) for f in multi["env_files"]),
        project_directory=Path(directory) if directory is not None else None,
        progress=single.get("progress", "auto"),
        parallel=parallel,
        runtime=single.get("runtime"),
    )
    return options, volumes, timeout


def _option(args: list[str], i: int) -> tuple[str, str | None, int]:
    """`--name value`, `--name=value` or `-n value` at `i`: (name, value or None if not one of
    these shapes, next i). Click reads `-n=x` as the value `=x`: left to it."""
    name, eq, value = args[i].partition("=")
    if not name.startswith("-") or name in ("-", "--"):
        return name, None, i + 1
    if eq:
        return name, value if name.startswith("--") else None, i + 1
    if i + 1 >= len(args) or args[i + 1].startswith("-"):
        return name, None, i + 1
    return name, args[i + 1], i + 2


def try_down(args: list[str]) -> int | None:
    """Run a plain `down` and return its exit code; None: not one, the typer app decides."""
    parsed = parse_down(args)
    if parsed is None:
        return None
    from stackup.cli.progress import live, make_reporter

    options, volumes, timeout = parsed
    ARGV[:] = args
    try:
        stack = options.named()
        reporter = make_reporter(options.progress)
        with live(reporter):
            stack.down(volumes=volumes, timeout=timeout, reporter=reporter)
    except StackupError as exc:
        return failed(exc)
    except KeyboardInterrupt:
        return 130
    return 0


def failed(exc: StackupError) -> int:
    """What `main.run` prints for a `StackupError`, and its exit code."""
    from stackup.cli.output import error, warn
    from stackup.errors import StackFailed
    from stackup.spec.errors import SpecError

    if isinstance(exc, SpecError):
        for message in exc.warnings:
            warn(message)
    error(str(exc))
    if isinstance(exc, StackFailed):
        from stackup.cli.diagnose import show_diagnoses

        show_diagnoses(exc)
    return exc.exit_code
