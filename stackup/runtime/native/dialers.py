"""How the client reaches an engine: a Unix socket, TCP with mutual TLS, or the system's ssh.

A `Dialer` opens one connection and returns it as a socket; the HTTP client
(`unixhttp.UnixHTTP`) and the exec/attach streams (`streams.open_upgraded`) speak over whatever
it returns, so every request and stream works the same over all three.

- `UnixDialer`: the local engine's socket.
- `TLSDialer`: `tcp://` with the client certificate of `STACKUP_CERT_PATH`. A `duplex` connection
  (an exec/attach stream, read by one thread and written by another) is relayed through a socket
  pair by a thread that alone uses the TLS object (`wire/relay.py` says why).
- `SSHDialer`: `ssh [-p PORT] [-l USER] HOST -- stackup system dial-stdio`, as Docker's
  `ssh://` does, with ssh's stdin and stdout being one end of a socket pair: ssh itself moves the
  bytes, no thread here. `STACKUP_SSH_COMMAND` replaces `ssh` (extra options, a config file), as
  `GIT_SSH_COMMAND` does for git. ssh's own error (host key, authentication) is kept and shown.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Protocol

from stackup.errors import EngineUnavailable
from stackup.runtime.wire.hosts import EngineHost, HostScheme
from stackup.runtime.wire.relay import relay

SSH_COMMAND_ENV = "STACKUP_SSH_COMMAND"
REMOTE_COMMAND = ("stackup", "system", "dial-stdio")
SSH_EXIT_GRACE_S = 5.0


class Dialer(Protocol):
    """Opens connections to one engine."""

    @property
    def remote(self) -> bool:
        """Whether the engine runs on another machine (so client paths mean nothing to it)."""
        ...

    def connect(self, timeout_s: float | None, *, duplex: bool = False) -> socket.socket:
        """A connected socket; `duplex`: it will be read and written from two threads at once."""
        ...

    def diagnose(self) -> str:
        """What the transport said about its last failure ('' if nothing), for error messages."""
        ...

    def __str__(self) -> str: ...


class UnixDialer:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def remote(self) -> bool:
        return False

    def connect(self, timeout_s: float | None, *, duplex: bool = False) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout_s)
            sock.connect(str(self.path))
        except BaseException:
            sock.close()
            raise
        return sock

    def diagnose(self) -> str:
        return ""

    def __str__(self) -> str:
        return str(self.path)


class TLSDialer:
    """`tcp://` with TLS (`context` is None only for an engine started with `--insecure-tcp`)."""

    def __init__(self, host: EngineHost, context: ssl.SSLContext | None) -> None:
        self.host = host
        self.context = context
        self._last_error = ""

    @property
    def remote(self) -> bool:
        return True

    def connect(self, timeout_s: float | None, *, duplex: bool = False) -> socket.socket:
        assert self.host.port is not None
        raw = socket.create_connection((self.host.host, self.host.port), timeout=timeout_s)
        if self.context is None:
            return raw
        try:
            sock = self.context.wrap_socket(raw, server_hostname=self.host.host)
        except ssl.SSLError as exc:
            raw.close()
            self._last_error = f"TLS handshake failed: {exc.reason or exc}"
            raise ConnectionRefusedError(self._last_error) from exc
        except BaseException:
            raw.close()
            raise
        if not duplex:
            return sock
        ours, theirs = socket.socketpair()
        sock.settimeout(None)

        def run() -> None:
            with contextlib.closing(sock), contextlib.closing(theirs):
                relay(sock, theirs)

        threading.Thread(target=run, name="stackup-tls-relay", daemon=True).start()
        ours.settimeout(timeout_s)
        return ours

    def diagnose(self) -> str:
        return self._last_error

    def __str__(self) -> str:
        return str(self.host)


class SSHDialer:
    def __init__(self, host: EngineHost, ssh_command: str | None = None) -> None:
        self.host = host
        self.argv = [*shlex.split(ssh_command or "ssh"), *self._destination(host), "--", *REMOTE_COMMAND]
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stderr: IO[bytes] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _destination(host: EngineHost) -> list[str]:
        args = ["-o", "BatchMode=yes"]  # never prompt on a terminal the CLI is drawing on
        if host.port:
            args += ["-p", str(host.port)]
        if host.user:
            args += ["-l", host.user]
        return [*args, host.host]

    @property
    def remote(self) -> bool:
        return True

    def connect(self, timeout_s: float | None, *, duplex: bool = False) -> socket.socket:
        ours, theirs = socket.socketpair()
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept as the last error until the next connect
        try:
            proc = subprocess.Popen(
                self.argv, stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=stderr, close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            stderr.close()
            reason = exc.strerror or exc
            raise EngineUnavailable(f"cannot run {self.argv[0]!r} for {self.host}: {reason}") from None
        finally:
            theirs.close()
        with self._lock:
            self._reap()
            self._procs.append(proc)
            if self._stderr is not None:
                self._stderr.close()
            self._stderr = stderr
        ours.settimeout(timeout_s)
        return ours

    def _reap(self) -> None:
        self._procs = [proc for proc in self._procs if proc.poll() is None]

    def diagnose(self) -> str:
        with self._lock:
            if self._stderr is None:
                return ""
            with contextlib.suppress(OSError):
                self._stderr.seek(0)
                return self._stderr.read()[-2000:].decode(errors="replace").strip()
        return ""

    def close(self) -> None:
        """Wait for the ssh processes, whose connections the client has closed by now (an ssh
        still running after the grace is killed: its connection is of no use to anyone)."""
        with self._lock:
            procs, self._procs = self._procs, []
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None
        for proc in procs:
            try:
                proc.wait(SSH_EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __str__(self) -> str:
        return str(self.host)


def dialer_for(host: EngineHost, environ: dict[str, str] | None = None) -> Dialer:
    """The dialer for a parsed host; TLS settings and the ssh command come from the environment."""
    from stackup.runtime.wire.hosts import TLS_VERIFY_ENV, TLSFiles, client_context

    env = dict(os.environ if environ is None else environ)
    match host.scheme:
        case HostScheme.UNIX:
            assert host.path is not None
            return UnixDialer(host.path)
        case HostScheme.SSH:
            return SSHDialer(host, env.get(SSH_COMMAND_ENV))
        case HostScheme.TCP:
            if env.get("STACKUP_TLS", "1") in ("0", "false", "no"):
                return TLSDialer(host, None)
            verify = env.get(TLS_VERIFY_ENV, "1") not in ("0", "false", "no")
            return TLSDialer(host, client_context(TLSFiles.from_env(env), verify=verify))
