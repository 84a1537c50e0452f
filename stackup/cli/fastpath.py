"""`stackup up -d` on an unchanged stack, answered without loading the model (target < 0.3 s).

A no-op `up` is the commonest command of a dev loop and of CI retries. The full path imports the
pydantic model, the planner and networkx (most of a second before any work). This module uses
only the standard library: it proves that nothing changed and that the engine still holds
exactly what the last successful `up -d` left, and only then answers "up to date".

The proof, all of which must hold (anything else falls through to the full path):
- the same working directory and the same command line (`up -d` with global options only);
- file discovery (`-f`, `COMPOSE_FILE`, `.env`, override files) finds the same files;
- every file the last load read (stack files, includes, extends, env files, config and secret
  files) has the same sha256, and every variable it consulted has the same value (the loader
  records both: `stackup.spec.inputs`); a load that enumerated the environment is never cached;
- the engine reports the same containers of the project, in the same state, with the same
  config hash; the same image IDs for the images they run; and the project's networks and volumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackup.errors import StackupError

if TYPE_CHECKING:
    from stackup.runtime.native.unixhttp import UnixHTTP

CACHE_VERSION = 2
_VALUE_OPTIONS = {
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--profile",
    "--env-file",
    "--project-directory",
    "--progress",
    "--parallel",
    "--runtime",
}
_DETACH = {"-d", "--detach"}
_BUILD = "--build"


def _root() -> Path:
    return Path(os.environ.get("STACKUP_ROOT") or "/var/lib/stackup")


def split_up_argv(argv: list[str]) -> list[str] | None:
    """The global options of a plain `[options] up -d`, normalised; None for any other command."""
    globals_: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "up":
            rest = set(argv[i + 1 :]) - {_BUILD}
            return globals_ if rest and rest <= _DETACH else None
        name, eq, value = arg.partition("=")
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
    return None


def builds_first(argv: list[str]) -> bool:
    """`up -d --build` (a plain `up -d` by `split_up_argv`): the shortcut must also find every
    build answered by the engine's build cache (`buildsend.send_builds`, `cached_only`)."""
    return split_up_argv(argv) is not None and _BUILD in argv


def cache_path(global_args: list[str], cwd: Path, *, build: bool = False) -> Path:
    material = json.dumps([str(cwd), global_args, *(["build"] if build else [])]).encode()
    key = hashlib.sha256(material).hexdigest()[:32]
    return _root() / "cache" / "up" / f"{key}.json"


def _get(http: UnixHTTP, path: str, params: dict[str, str] | None = None) -> Any:
    answer = http.request("GET", path, params=params)
    if answer.status != 200:
        raise OSError(f"engine answered {answer.status}")
    return json.loads(answer.content)


def runtime_of(global_args: list[str]) -> str:
    """The runtime this invocation talks to (`--runtime`, else STACKUP_RUNTIME, else native)."""
    chosen = [global_args[i + 1] for i in range(0, len(global_args), 2) if global_args[i] == "--runtime"]
    return chosen[-1] if chosen else os.environ.get("STACKUP_RUNTIME") or "native"


def snapshot(project: str, runtime: str, *, locked: bool = True) -> dict[str, Any]:
    """The chosen runtime's view of `project`, in the same shape for both runtimes."""
    if runtime == "docker":
        from stackup.runtime.docker.snapshot import docker_snapshot

        return docker_snapshot(project)
    if runtime != "native":
        raise OSError(f"no shortcut for runtime {runtime}")
    return engine_snapshot(project, locked=locked)


def engine_snapshot(project: str, *, locked: bool = True) -> dict[str, Any]:
    """What the engine holds for `project`: containers (state, hash), image IDs, networks, volumes.

    `locked=False` is for `remember`, right after this process's own `up` released the lock:
    waiting for it again costs the lock's release grace (0.3 s) on every `up -d`, and a record
    taken while another client changes the project only makes the next check fail safe."""
    from stackup.runtime.native.unixhttp import UnixHTTP

    label = {"label": f"io.stackup.project={project}"}
    http = UnixHTTP(_root() / "stackupd.sock", timeout_s=5.0)
    holder = {"holder": f"up (no-op check), pid {os.getpid()}"}
    try:
        # Read under the project's lock, as a full `up` observes: another `up`/`down` (or the
        # last requests of one that died) may be changing what we read. Found by bench/chaos.py:
        # a CLI killed during `down` left a stop running, and this check saw the container still
        # running and answered "up to date". Held for longer than 5 s: the full path waits.
        with contextlib.ExitStack() as stack:
            if locked:
                lock = stack.enter_context(http.stream("POST", f"/projects/{project}/lock", params=holder))
                if lock.status != 200:
                    raise OSError(f"engine answered {lock.status} to the project lock")
                state = ""
                while state != "held":  # "waiting": read on; the socket's timeout (5 s) ends it
                    line = lock.readline()
                    if not line:
                        raise OSError("the engine closed the project lock")
                    state = json.loads(line).get("state", "")
            containers = _get(http, "/containers", label)
            images = {ref: image["id"] for image in _get(http, "/images") for ref in image.get("refs", [])}
            networks = sorted(n["name"] for n in _get(http, "/networks", label))
            volumes = sorted(v["name"] for v in _get(http, "/volumes", label))
    finally:
        http.close()
    return {
        "containers": {
            c["id"]: [c["status"], c.get("exit_code"), c["labels"].get("io.stackup.config-hash", "")]
            for c in containers
        },
        "images": {c["image"]: images.get(c["image"]) for c in containers},
        "networks": networks,
        "volumes": volumes,
    }


def discover(global_args: list[str], cwd: Path) -> tuple[list[str], list[str]]:
    """Stack files and env files as the loader would find them now (cheap: no parsing)."""
    from stackup.spec.options import LoadOptions, env_files, stack_files

    def values(*names: str) -> list[str]:
        return [global_args[i + 1] for i in range(0, len(global_args), 2) if global_args[i] in names]

    directory = values("--project-directory")
    options = LoadOptions(
        files=[Path(f) for f in values("-f", "--file")],
        project_directory=Path(directory[-1]) if directory else None,
        env_files=[Path(f) for f in values("--env-file")],
        environ=dict(os.environ),
        working_dir=cwd,
    )
    found, _ = stack_files(options, os.environ)
    return [str(p) for p in found], [str(p) for p in env_files(options, os.environ)]


def _inputs_unchanged(cached: dict[str, Any]) -> bool:
    for name, value in cached["variables"].items():
        if os.environ.get(name) != value:
            return False
    for name, digest in cached["files"].items():
        try:
            now: str | None = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError:
            now = None
        if now != digest:
            return False
    return True


def try_noop_up(argv: list[str]) -> int | None:
    """Exit code 0 when `argv` is a no-op `up -d` that can be proven so; None to take the full path."""
    global_args = split_up_argv(argv)
    if global_args is None or os.environ.get("STACKUP_HOST"):  # the record is the local engine's
        return None
    cwd = Path.cwd()
    build = builds_first(argv)
    try:
        cached = json.loads(cache_path(global_args, cwd, build=build).read_text())
        if cached.get("version") != CACHE_VERSION:
            return None
        if discover(global_args, cwd) != (cached["stack_files"], cached["env_files"]):
            return None
        if not _inputs_unchanged(cached["inputs"]):
            return None
        if build and not _builds_answered(cached["builds"], global_args):
            return None
        if snapshot(cached["project"], runtime_of(global_args)) != cached["engine"]:
            return None
    except (OSError, ValueError, KeyError, TypeError, StackupError):  # engine gone, cache stale
        return None
    except Exception as exc:  # the shortcut must never turn a working `up` into a failing one
        if exc.__class__.__name__ != "SpecError":
            raise
        return None
    progress = [global_args[i + 1] for i in range(0, len(global_args), 2) if global_args[i] == "--progress"]
    if "quiet" not in progress:
        count = len(cached["engine"]["containers"])
        sys.stderr.write(f" \u2714 {cached['project']}: {count} containers up to date (inputs unchanged)\n")
    return 0


def _builds_answered(builds: list[list[Any]], global_args: list[str]) -> bool:
    """Every build of `up --build` answered by the engine's build cache (native engine only)."""
    if runtime_of(global_args) != "native" or os.environ.get("STACKUP_HOST"):
        return False
    from stackup.cli.buildsend import Unanswered, send_builds

    try:
        send_builds(builds, {}, cached_only=True)
    except Unanswered:
        return False
    return True


def remember(
    global_args: list[str],
    *,
    project: str,
    stack_files: list[str],
    env_files: list[str],
    inputs: dict[str, Any],
    builds: list[tuple[str, dict[str, Any]]] | None = None,
) -> None:
    """After a successful `up -d`: record what the shortcut must find next time. `builds`: the
    build requests of `up -d --build` (without them, the record is for a plain `up -d`)."""
    if os.environ.get("STACKUP_HOST"):  # another engine's state is not the local record's to keep
        return
    path = cache_path(global_args, Path.cwd(), build=builds is not None)
    try:
        current = snapshot(project, runtime_of(global_args), locked=False)
    except (OSError, StackupError):  # busy or gone: no shortcut next time, the `up` still succeeded
        return
    if any(state[0] != "running" and state[:2] != ["exited", 0] for state in current["containers"].values()):
        # A container that died since (chaos: its init killed right after the start) is one the
        # next full `up` starts again; cached, the shortcut would call that state "up to date".
        # A finished job (exited 0) is at its target and may be cached.
        return
    data = {
        "version": CACHE_VERSION,
        "project": project,
        "stack_files": stack_files,
        "env_files": env_files,
        "inputs": inputs,
        "engine": current,
        **({"builds": [[service, body] for service, body in builds]} if builds is not None else {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    tmp.replace(path)
