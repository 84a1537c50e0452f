"""`stackup pull` of an unchanged stack, answered without loading the model.

The full path spends a second or more importing the pydantic models, the loader and the planner
before it asks the engine anything; a warm `pull` (every image present) then does almost nothing.
Like `fastpath` for `up -d`, the proof that the stack did not change is the loader's own record of
what it read: the same command line in the same directory, the same stack and env files found,
every file it read with the same sha256 and every variable it consulted with the same value.
What the last full `pull` selected is cached per service (`remember`: its image and policy;
`missing` images present are skipped, `never`/`build` and services without an image too, all
others pulled, as `api/pulling.pull_plan` decides); this module asks the engine only what can have
changed since:
whether each `missing` image is still here (`GET /images/REF`), and pulls the rest through
`pullfast` (the engine's one manifest request for an image already here). Output is the full
path's. Anything unexpected (another runtime, no cache, an error from any pull) returns None and
the full path runs (a failed pull leaves nothing, so running it again is safe).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from stackup.cli.fastpath import _VALUE_OPTIONS, _inputs_unchanged, _root, discover, runtime_of
from stackup.cli.pullfast import _auth, _ndjson_post

CACHE_VERSION = 1
_FLAGS = {"-q", "--quiet", "--ignore-pull-failures", "--include-deps"}
_WORDS = {"exists": "Already exists", "done": "Pull complete"}


def split_pull_argv(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """(global options, pull arguments) of `[options] pull [flags] [SERVICE...]`, else None."""
    globals_: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "pull":
            rest = argv[i + 1:]
            if any(a.startswith("-") and a not in _FLAGS for a in rest):
                return None
            return globals_, rest
        name, eq, value = arg.partition("=")
        if name not in _VALUE_OPTIONS:
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            value = argv[i + 1]
            i += 1
        globals_ += [name, value]
        i += 1
    return None


def cache_path(global_args: list[str], pull_args: list[str], cwd: Path) -> Path:
    key = hashlib.sha256(json.dumps([str(cwd), global_args, pull_args]).encode()).hexdigest()[:32]
    return _root() / "cache" / "pull" / f"{key}.json"


def remember(argv: list[str], *, project: str, stack_files: list[str], env_files: list[str],
             inputs: dict[str, Any], services: list[dict[str, Any]]) -> None:
    """After a successful full `pull`: its services (name, image, policy kind as `parse_policy`
    gives it, the declared policy, platform, the image's familiar name), for the next identical
    invocation. `stackup pull` pulls periodic images like `always` ones: no clock is involved."""
    split = split_pull_argv(argv)
    if split is None:
        return
    path = cache_path(*split, Path.cwd())
    data = {"version": CACHE_VERSION, "project": project, "stack_files": stack_files,
            "env_files": env_files, "inputs": inputs, "services": services}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    tmp.replace(path)


def try_stack_pull(argv: list[str]) -> int | None:
    """The exit code of a `pull` proven to need no model, or None to take the full path."""
    split = split_pull_argv(argv)
    if split is None or os.environ.get("STACKUP_HOST") or runtime_of(split[0]) != "native":
        return None
    global_args, pull_args = split
    quiet = "-q" in pull_args or "--quiet" in pull_args
    cwd = Path.cwd()
    sock = _root() / "stackupd.sock"
    try:
        cached = json.loads(cache_path(global_args, pull_args, cwd).read_text())
        if cached.get("version") != CACHE_VERSION or not sock.exists():
            return None
        if discover(global_args, cwd) != (cached["stack_files"], cached["env_files"]):
            return None
        if not _inputs_unchanged(cached["inputs"]):
            return None
        return _run(sock, cached["services"], quiet)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _run(sock: Path, services: list[dict[str, Any]], quiet: bool) -> int | None:
    """Pull and skip as `pull_plan` + `_report` would; None if anything is not as expected."""
    skipped: list[str] = []
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for service in services:  # sorted by name, as the full path selects them
        name, image, policy = service["name"], service["image"], service["policy"]
        if not image:
            skipped.append(f"{name}: skipped (no image to pull (built))")
        elif policy in ("never", "build"):
            skipped.append(f"{name}: skipped (pull_policy: {service['declared']})")
        elif policy == "missing" and _present(sock, image, service["familiar"]):
            skipped.append(f"{name}: skipped (already present)")
        else:
            by_ref.setdefault(image, []).append(service)
    todo = sorted(by_ref.items())
    results: list[tuple[str, list[str]] | None] = [None] * len(todo)

    def one(index: int) -> None:
        ref, users = todo[index]
        auth = _auth(ref)
        if auth is not None:
            body = json.dumps({"ref": ref, "platform": users[0]["platform"], "auth": auth}).encode()
            results[index] = _pull(sock, ref, body)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(todo))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(r is None for r in results):
        return None
    for result in results:
        assert result is not None
        if not quiet:
            sys.stderr.writelines(line + "\n" for line in result[1])
    for (ref, _users), result in zip(todo, results, strict=True):
        assert result is not None
        if not quiet:
            sys.stdout.write(f"Pulled {ref} {result[0]}\n")
    if not quiet:
        sys.stderr.writelines(line + "\n" for line in skipped)
    return 0


def _present(sock: Path, ref: str, familiar: str) -> bool:
    """Whether the engine holds `ref` under that name (not an id prefix that looks like it)."""
    status, body = _get(sock, f"/images/{ref}")
    if status == 404:
        return False
    if status != 200:
        raise OSError(f"engine answered {status}")
    return familiar in json.loads(body).get("refs", [])


def _pull(sock: Path, ref: str, body: bytes) -> tuple[str, list[str]] | None:
    """(image id, progress lines) of one pull, or None on any error (the full path reports it)."""
    lines: list[str] = []
    for line in _ndjson_post(sock, "/images/pull", body):
        if not line.strip():
            continue
        event = json.loads(line)
        if event.get("error"):
            return None
        if event.get("image"):
            return str(event["image"]["id"]), lines
        word = _WORDS.get(str(event.get("state")))
        text = f"{ref}: {str(event.get('layer', '')).removeprefix('sha256:')[:12]}: {word}"
        if word and text not in lines:
            lines.append(text)
    return None


def _get(sock_path: Path, path: str) -> tuple[int, bytes]:
    """A GET over the engine's socket, by hand (see `pullfast._ndjson_post` for why)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(sock_path))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: stackupd\r\nConnection: close\r\n\r\n".encode())
        with sock.makefile("rb") as stream:
            status = int(stream.readline().split(b" ", 2)[1])
            length, chunked = -1, False
            while (header := stream.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if not chunked:
                return status, stream.read(length) if length >= 0 else stream.read()
            body = b""
            while (size_line := stream.readline()) and (size := int(size_line.split(b";")[0], 16)):
                body += stream.read(size)
                stream.readline()
            return status, body
