"""`stackup image pull NAME` straight to a running engine, without loading the typer app.

A pull of an image that is already here is one manifest request for the engine; the full CLI
path spends over a second importing typer, pydantic models and every command module before it
sends it. Like `fastpath` for `up -d`, this module uses only the standard library (and
`stackup.registry.auth` when Docker's config may hold credentials for the host): it resolves the
caller's credentials, posts `/images/pull` (the request `EngineClient.pull_image` sends, built
as plain JSON, the HTTP written by hand) and prints what the full path prints. Anything it is
not sure about (another runtime, a remote engine, an engine that is not running, options it
does not know) returns None and the full path runs.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
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


def _registry_host(ref: str) -> str:
    """The registry a reference names, by Docker's rule (`reference.split_domain`): the first
    component when it has a `.` or `:`, is `localhost` or has an uppercase letter, else Docker
    Hub. Only for finding credentials: the engine parses and validates the reference itself."""
    first, slash, _rest = ref.partition("@")[0].partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return "docker.io" if first == "index.docker.io" else first
    return "docker.io"


def _mirror_hosts() -> list[str] | None:
    """The registry mirrors the engine tries for Docker Hub images (their hosts); None when the
    settings cannot be read cheaply (the full path decides)."""
    for name in ("/etc/stackup/daemon.json", "/etc/docker/daemon.json"):
        try:
            data = json.loads(Path(name).read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None
        mirrors = data.get("registry-mirrors") if isinstance(data, dict) else None
        if not mirrors:
            return []
        from stackup.registry.config import mirror_host

        return [mirror_host(str(m)) for m in mirrors]
    return []


def _auth(ref: str) -> list[dict[str, str]] | None:
    """The caller's credentials for the reference's registry (and, for Docker Hub, its mirrors);
    None: let the full path decide.

    Docker's config is read with `json` first; only when it may hold something for these hosts
    (or names a credential store) is `stackup.registry.auth` loaded, which knows every form."""
    host = _registry_host(ref)
    hosts = [host]
    if host == "docker.io":
        mirrors = _mirror_hosts()
        if mirrors is None:
            return None
        hosts += [m for m in mirrors if m not in hosts]
    base = os.environ.get("DOCKER_CONFIG")
    path = (Path(base) if base else Path.home() / ".docker") / "config.json"
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return None
    keys = [key for section in ("auths", "credHelpers") for key in (data.get(section) or {})]
    mentions = data.get("credsStore") or any(
        name in key or (name == "docker.io" and "docker.io" in key) for name in hosts for key in keys)
    if not mentions:
        return []
    from stackup.registry.auth import load_credentials
    from stackup.registry.errors import RegistryError

    found = []
    for name in hosts:
        try:
            creds = load_credentials(path, name)
        except RegistryError:
            return None
        if creds is not None:
            found.append({"host": name, "username": creds.username, "password": creds.password,
                          "identity_token": creds.identity_token})
    return found


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
    """POST /images/pull over the socket and follow the NDJSON answer; None if anything about the
    exchange is unexpected (the full path then retries with its own client)."""
    seen: set[tuple[str, str]] = set()
    try:
        for line in _ndjson_post(socket_path, "/images/pull", body):
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
    except (OSError, ValueError, KeyError):
        return None
    return None


def _ndjson_post(socket_path: Path, path: str, body: bytes) -> Iterator[bytes]:
    """HTTP/1.1 over the Unix socket, by hand: `http.client` (and the `email` package it loads)
    would cost more than the whole warm pull. Yields the lines of a 200 chunked answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(socket_path))
        head = (f"POST {path} HTTP/1.1\r\nHost: stackupd\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        sock.sendall(head + body)
        stream = sock.makefile("rb")
        status = stream.readline().split(b" ", 2)
        if len(status) < 2 or status[1] != b"200":
            raise ValueError(f"engine answered {status!r}")
        chunked = False
        while (header := stream.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            yield from stream
            return
        pending = b""
        while (size_line := stream.readline()) and (size := int(size_line.split(b";")[0], 16)):
            pending += stream.read(size)
            stream.readline()  # the CRLF after each chunk
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending
    finally:
        sock.close()
