"""`stackup build` without loading the model: recorded requests sent to the engine (standard library only).

The full path spends well over a second importing typer, pydantic and the planner before it
sends the engine requests it answers from its cache in milliseconds (or with the few steps a
change reruns). This shortcut proves the requests are the ones the full path would send, and
anything short of a proof falls through to the full path: the same working directory, global
options and services; the same stack files found; every file the last load read with the same
sha256 and every variable it consulted with the same value (the `up -d` shortcut's proof,
`cli/fastpath.py`). The requests that load produced were recorded by the last successful full
`stackup build` (never those carrying a secret's value).

The engine decides what to build, exactly as for the full path: every step's key covers the
Dockerfile, the content of the context files each COPY reads, `.dockerignore`, build args,
target and base image ids, so a no-op is answered from the cache and a change reruns only the
steps it invalidates (`cli/buildsend.py` streams the progress and maps the engine's error to the
error the full path raises). Command-line build args are merged into the recorded requests
here, as `Stack.build` merges them, so `--build-arg` values (and `--build-arg KEY` read from the
environment) are never part of the record.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackup.cli.buildsend import Unanswered, send_builds
from stackup.cli.fastpath import _VALUE_OPTIONS, _inputs_unchanged, _root, discover
from stackup.errors import StackupError, UsageError

CACHE_VERSION = 1
_QUIET = {"-q", "--quiet"}


def build_args(values: list[str] | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`--build-arg KEY=VALUE` values as a mapping; a bare `KEY` takes the environment's value
    (and is left out when unset), as Compose does."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f'--build-arg expects KEY=VALUE, got "{item}"')
        if not sep:
            if key not in env:
                continue
            value = env[key]
        out[key] = value
    return out


def split_build_argv(argv: list[str]) -> tuple[list[str], list[str], list[str], bool] | None:
    """(global options, services, --build-arg values, quiet) of `[options] build [-q]
    [--build-arg KV]... [SERVICE]...`; None for anything else (`--no-cache`, `--pull`, ...)."""
    globals_: list[str] = []
    i = 0
    while i < len(argv) and argv[i] != "build":
        name, eq, value = argv[i].partition("=")
        if name not in _VALUE_OPTIONS:
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            value = argv[i + 1]
            i += 1
        if name == "--progress" and value == "json":
            return None
        globals_ += [name, value]
        i += 1
    if i >= len(argv):
        return None
    services: list[str] = []
    args: list[str] = []
    quiet = False
    rest = argv[i + 1 :]
    j = 0
    while j < len(rest):
        arg = rest[j]
        if arg in _QUIET:
            quiet = True
        elif arg == "--build-arg" and j + 1 < len(rest):
            args.append(rest[j + 1])
            j += 1
        elif arg.startswith("--build-arg="):
            args.append(arg.partition("=")[2])
        elif arg.startswith("-"):
            return None
        else:
            services.append(arg)
        j += 1
    return globals_, services, args, quiet


def cache_path(global_args: list[str], services: list[str], cwd: Path) -> Path:
    key = hashlib.sha256(json.dumps([str(cwd), global_args, services]).encode()).hexdigest()[:32]
    return _root() / "cache" / "build" / f"{key}.json"


def _native(global_args: list[str]) -> bool:
    from stackup.cli.fastpath import runtime_of

    return runtime_of(global_args) == "native" and not os.environ.get("STACKUP_HOST")


def try_build(argv: list[str]) -> int | None:
    """The exit code of `argv`'s builds sent from the record, or None to take the full path."""
    parsed = split_build_argv(argv)
    if parsed is None:
        return None
    global_args, services, arg_values, quiet = parsed
    if not _native(global_args) or not (_root() / "stackupd.sock").exists():
        return None
    cwd = Path.cwd()
    try:
        cached = json.loads(cache_path(global_args, services, cwd).read_text())
        if cached.get("version") != CACHE_VERSION:
            return None
        if discover(global_args, cwd) != (cached["stack_files"], cached["env_files"]):
            return None
        if not _inputs_unchanged(cached["inputs"]):
            return None
        extra = build_args(arg_values)
        builds = [(str(service), dict(body)) for service, body in cached["builds"]]
        if any(not body.get("tags") for _, body in builds):
            return None
    except (OSError, ValueError, KeyError, TypeError, StackupError):
        return None  # record stale or foreign, or a problem the full path reports
    progress = [global_args[i + 1] for i in range(0, len(global_args), 2) if global_args[i] == "--progress"]

    def show(service: str, line: str) -> None:
        sys.stderr.write(f"{service:12} {line}\n")
        sys.stderr.flush()

    try:
        built = send_builds([list(b) for b in builds], extra, cached_only=False,
                            emit=None if quiet or "quiet" in progress else show)
    except Unanswered:
        return None  # the engine is not there (or too old): the full path starts or explains it
    except StackupError as exc:
        from stackup.cli.output import error

        error(str(exc))
        return exc.exit_code
    sys.stdout.write("".join(f"{image}\n" if quiet else f"{service}: {image}\n" for service, image in built))
    sys.stdout.flush()
    return 0


def remember(
    argv: list[str],
    *,
    project: str,
    stack_files: list[str],
    env_files: list[str],
    inputs: dict[str, Any],
    builds: list[tuple[str, dict[str, Any]]],
) -> None:
    """After a successful full `stackup build`: what the shortcut must find next time. `builds`
    are (service, request body) without the command line's build args."""
    parsed = split_build_argv(argv)
    if parsed is None or any(body.get("no_cache") or body.get("pull") for _, body in builds):
        return  # a build that never answers from the cache alone (`no_cache`/`pull` in the file)
    global_args, services, _args, _quiet = parsed
    if not _native(global_args):
        return
    data = {
        "version": CACHE_VERSION,
        "project": project,
        "stack_files": stack_files,
        "env_files": env_files,
        "inputs": inputs,
        "builds": [[service, body] for service, body in builds],
    }
    path = cache_path(global_args, services, Path.cwd())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    tmp.replace(path)
