"""`stackupd`: the engine process. Serves the API with uvicorn on a root-only Unix socket.

One engine per `STACKUP_ROOT`, enforced with an flock held for the engine's whole life (a stale
socket file left by a killed engine is then safe to unlink). The socket is bound here rather
than by uvicorn because uvicorn would chmod it 0666: it is created under a 0177 umask and
chmod'ed 0600, since whoever can talk to it can run anything as root. `--group NAME` (or
`STACKUP_GROUP`) opens it to one group, 0660, as Docker's `docker` group: only when asked.

`--host tcp://ADDR:PORT` adds a TCP listener for remote clients, mutual TLS only unless
`--insecure-tcp` (see `remote.py`).

With `--detach` it becomes a daemon (see `_detach`); the launcher (`runtime/native/launcher.py`)
always starts it that way.

Stopping the engine (`/shutdown`, SIGTERM) stops serving and nothing else: containers keep
running under their conmon, and the next engine re-adopts them (see `monitor.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import grp
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn

from stackup.errors import UsageError
from stackup.runtime.engine import nospace
from stackup.runtime.engine.api.app import create_app
from stackup.runtime.engine.api.streams import stream_server
from stackup.runtime.engine.api.upgrade import upgrading_protocol
from stackup.runtime.engine.remote import RemoteListener
from stackup.runtime.engine.service import EngineService
from stackup.runtime.wire.hosts import EngineHost, HostScheme, TLSFiles, parse_host, server_context
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.runfiles import lock_path, log_path, pid_path

log = logging.getLogger("stackupd")

_SUN_PATH_MAX = 107
"""sockaddr_un.sun_path holds 108 bytes including the terminating NUL."""


@contextlib.contextmanager
def _engine_lock(paths: EnginePaths) -> Iterator[None]:
    """Hold the root's engine lock or fail at once: a second engine would fight over containers."""
    paths.run.mkdir(parents=True, exist_ok=True)
    with open(lock_path(paths), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"stackupd: another engine already runs on {paths.root}") from None
        pid_file = pid_path(paths)
        pid_file.write_text(f"{os.getpid()}\n")
        try:
            yield
        finally:
            pid_file.unlink(missing_ok=True)


GROUP_ENV = "STACKUP_GROUP"


def group_id(name: str) -> int:
    """The gid of `--group`, refusing a group that does not exist rather than falling back to root."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise SystemExit(f"stackupd: group {name!r} does not exist (create it: `groupadd {name}`)") from None


def bind_socket(path: Path, *, gid: int | None = None) -> socket.socket:
    """A listening Unix socket at `path`, replacing a stale file left by a dead engine: mode 0600
    owned by us, or 0660 owned by group `gid` when one was configured."""
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise SystemExit(f"stackupd: socket path too long for a Unix socket ({path})")
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(os.fspath(path))
    finally:
        os.umask(old_umask)
    if gid is not None:
        os.chown(path, -1, gid)
    os.chmod(path, 0o600 if gid is None else 0o660)
    sock.listen(128)
    return sock


def _server(engine: EngineService, log_level: str) -> uvicorn.Server:
    """uvicorn with uvloop and the httptools parser (C) and no websockets.

    Every container costs the CLI two requests and the engine answers each on one event loop
    thread that shares the GIL with the workers creating containers: with asyncio + h11 (pure
    Python) that loop held the GIL for about a third of a 50-service `up`. uvloop and httptools
    are what uvicorn itself recommends for speed, and add a few MB to the engine. The protocol
    is httptools' with upgraded connections for exec and attach streams (`api/upgrade.py`)."""
    config = uvicorn.Config(
        create_app(engine),
        http=upgrading_protocol(stream_server(engine)),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        loop="uvloop",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)

    def request_shutdown() -> None:
        server.should_exit = True

    engine.request_shutdown = request_shutdown
    return server


def serve(
    paths: EnginePaths,
    *,
    log_level: str = "info",
    group: str | None = None,
    listeners: Sequence[RemoteListener] = (),
) -> int:
    """Run the engine in the foreground until `/shutdown` or SIGTERM/SIGINT."""
    paths.root.mkdir(parents=True, exist_ok=True)
    gid = group_id(group) if group else None
    with _engine_lock(paths):
        engine = EngineService.open(paths)
        try:
            server = _server(engine, log_level)
            sock = bind_socket(paths.socket, gid=gid)
            log.info("stackupd %s serving on %s (pid %d)", engine.version, paths.socket, os.getpid())
            started: list[RemoteListener] = []
            try:
                for listener in listeners:
                    listener.start()
                    started.append(listener)
                server.run(sockets=[sock])
            finally:
                for listener in started:
                    listener.close()
                sock.close()
                paths.socket.unlink(missing_ok=True)
        finally:
            engine.close()
            log.info("stackupd stopped")
    return 0


DAEMON_UMASK = 0o022
"""Files the engine makes (bundles, logs, state) are not group/world-writable whoever started it."""


def _detach(paths: EnginePaths) -> None:
    """Become a daemon: fork (the parent exits so whoever spawned us can reap it at once), a new
    session, working directory `/`, a fixed umask, stdin from /dev/null, stdout and stderr
    appended to `engine.log`.

    The working directory matters beyond tidiness: conmon asks for it at start and gives up when
    it is gone, so an engine started from a directory deleted later failed every create.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path(paths), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    with contextlib.suppress(OSError):  # relative import paths must survive the chdir
        sys.path[:] = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    os.chdir("/")
    os.umask(DAEMON_UMASK)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)


def remote_listeners(args: argparse.Namespace, paths: EnginePaths) -> list[RemoteListener]:
    """The TCP listeners `--host` asks for, each checked before anything starts: a typo in a
    certificate path must fail the start, not the first client."""
    try:
        hosts = [parse_host(value) for value in args.host or ()]
    except UsageError as exc:
        raise SystemExit(f"stackupd: {exc}") from None
    tcp: list[EngineHost] = []
    for host in hosts:
        if host.scheme is HostScheme.TCP:
            tcp.append(host)
        elif host.scheme is not HostScheme.UNIX or host.path != paths.socket:
            raise SystemExit(
                f"stackupd: --host {host}: the engine listens on its Unix socket {paths.socket} "
                "(set by --root) and on tcp:// addresses; ssh:// is a client's way in"
            )
    if not tcp:
        if args.tls_verify or args.insecure_tcp:
            raise SystemExit("stackupd: --tls-verify and --insecure-tcp need a --host tcp://ADDR:PORT")
        return []
    if args.insecure_tcp and args.tls_verify:
        raise SystemExit("stackupd: --insecure-tcp and --tls-verify contradict each other")
    if args.insecure_tcp:
        return [RemoteListener(host, paths.socket, None) for host in tcp]
    if not args.tls_verify:
        raise SystemExit(
            f"stackupd: refusing to listen on {tcp[0]} without TLS: whoever reaches it could run anything "
            "as root. Pass --tls-verify with --tlscacert, --tlscert and --tlskey (mutual TLS), or "
            "--insecure-tcp if you really mean it."
        )
    defaults = TLSFiles.from_env()
    files = TLSFiles(
        ca=args.tlscacert or defaults.ca, cert=args.tlscert or defaults.cert, key=args.tlskey or defaults.key
    )
    try:
        context = server_context(files)
    except UsageError as exc:
        raise SystemExit(str(exc)) from None
    return [RemoteListener(host, paths.socket, context) for host in tcp]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackupd", description="the stackup container engine")
    parser.add_argument("--root", type=Path, help="engine root (default: $STACKUP_ROOT or /var/lib/stackup)")
    parser.add_argument("--detach", action="store_true", help="fork into the background")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("-H", "--host", action="append", help="also listen on tcp://ADDR:PORT (repeatable)")
    parser.add_argument("--tls-verify", action="store_true", help="require client certificates (mutual TLS)")
    parser.add_argument("--tlscacert", type=Path, help="CA that signs client certificates")
    parser.add_argument("--tlscert", type=Path, help="the engine's certificate")
    parser.add_argument("--tlskey", type=Path, help="the engine's private key")
    parser.add_argument("--insecure-tcp", action="store_true", help="tcp:// WITHOUT TLS (dangerous)")
    parser.add_argument("--group", default=None, help="open the Unix socket to this group (0660)")
    args = parser.parse_args(argv)
    paths = EnginePaths(args.root.absolute()) if args.root else EnginePaths.from_env()
    listeners = remote_listeners(args, paths)
    group = args.group or os.environ.get(GROUP_ENV) or None
    if group:
        group_id(group)
    if args.detach:
        _detach(paths)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )
    try:
        return serve(paths, log_level=args.log_level, group=group, listeners=listeners)
    except Exception as exc:
        if (full := nospace.message(paths.root, exc)) is not None:
            raise SystemExit(f"stackupd: {full}") from None
        raise


if __name__ == "__main__":
    sys.exit(main())
