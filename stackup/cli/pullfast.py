"""`stackup image pull NAME` straight to a running engine, without loading the typer app.

A pull of an image that is already here is one manifest request for the engine; the full CLI
path spends over a second importing typer, pydantic models and every command module before it
sends it. Like `fastpath` for `up -d`, this module uses only the standard library and
`stackup.registry`'s stdlib-only modules (reference, auth, config): it resolves the caller's
credentials, posts `/images/pull` (the same request `EngineClient.pull_image` sends, built as
plain JSON) and prints what the full path prints. Anything it is not sure about (another
runtime, a remote engine, an engine that is not running, options it does not know) returns None
and the full path runs.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

_WORDS = {"exists": "Already exists", "done": "Pull complete"}


def _parse(args: list[str]) -> tuple[list[str], bool] | None:
    """(references, quiet) for exactly `image pull [-q|--quiet] NAME...`, else None."""
    if args[:2] != ["image", "pull"]:
        return None
    rest = args[2:]
    quiet = any(a in ("-q", "--quiet") for a in rest)
    names = [a for a in rest if a not in ("-q", "--quiet")]
    if not names or any(n.startswith("-") for n in names):
        return None
    return names, quiet


def _auth(ref: str) -> list[dict[str, str]] | None:
    """The caller's credentials for the reference's registry; None when the reference is bad."""
    from stackup.registry.auth import load_credentials
    from stackup.registry.config import default_docker_config
    from stackup.registry.errors import RegistryError
    from stackup.registry.reference import Reference

    try:
        host = Reference.parse(ref).domain
        found = load_credentials(default_docker_config(), host)
    except RegistryError:
        return None  # the full path reports it, with the CLI's formatting
    if found is None:
        return []
    return [{"host": host, "username": found.username, "password": found.password,
             "identity_token": found.identity_token}]


def try_image_pull(args: list[str]) -> int | None:
    """Run the pulls and return the exit code, or None to let the full CLI handle it."""
    parsed = _parse(args)
    elsewhere = os.environ.get("STACKUP_HOST") or os.environ.get("STACKUP_RUNTIME", "native") != "native"
    if parsed is None or elsewhere:
        return None
    refs, quiet = parsed
    socket_path = Path(os.environ.get("STACKUP_ROOT") or "/var/lib/stackup") / "stackupd.sock"
    if not socket_path.exists():
        return None
    bodies = []
    for ref in refs:
        auth = _auth(ref)
        if auth is None:
            return None
        bodies.append(json.dumps({"ref": ref, "auth": auth}).encode())
    results: list[tuple[str, str] | None] = [None] * len(refs)  # (image id, error)
    lock = threading.Lock()

    def one(index: int) -> None:
        results[index] = _pull(socket_path, refs[index], bodies[index], quiet, lock)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(refs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(r is None for r in results):
        return None  # the engine went away or is too old: the full path starts or explains it
    code = 0
    for ref, result in zip(refs, results, strict=True):
        assert result is not None
        image_id, error = result
        if error:
            sys.stderr.write(f"error: {error}\n")
            code = 1
        else:
            sys.stdout.write(f"{image_id}\n" if quiet else f"Pulled {ref} {image_id}\n")
    return code


def _pull(socket_path: Path, ref: str, body: bytes, quiet: bool, lock: threading.Lock,
          ) -> tuple[str, str] | None:
    from stackup.errors import StackupError
    from stackup.runtime.native.unixhttp import UnixHTTP

    http = UnixHTTP(socket_path, timeout_s=None)
    seen: set[tuple[str, str]] = set()
    try:
        with http.stream("POST", "/images/pull", body=body, timeout_s=None) as response:
            if response.status != 200:
                return None
            while line := response.readline():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("error"):
                    return "", str(event["error"])
                if event.get("image"):
                    return str(event["image"]["id"]), ""
                word = _WORDS.get(str(event.get("state")))
                if word and not quiet and (event["layer"], word) not in seen:
                    seen.add((event["layer"], word))
                    with lock:
                        sys.stderr.write(f"{ref}: {event['layer'].removeprefix('sha256:')[:12]}: {word}\n")
    except StackupError:
        return None
    finally:
        http.close()
    return None
