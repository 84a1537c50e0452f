"""Where an engine listens: `STACKUP_HOST` / `--host` URLs, and the TLS files of a remote one.

Read by both sides: the client dials what it names (`runtime/native/dialers.py`), `stackupd
--host` listens on it (`runtime/engine/remote.py`). The schemes are Docker's:

- `unix:///path/to/stackupd.sock`: a local socket (the default: `$STACKUP_ROOT/stackupd.sock`);
- `tcp://ADDR:PORT`: a remote engine over TCP, mutual TLS unless the engine was started with
  `--insecure-tcp`;
- `ssh://[user@]host[:port]`: the system's `ssh` runs `stackup system dial-stdio` on the host,
  which relays to that host's own engine socket.

TLS files follow `DOCKER_CERT_PATH`: `ca.pem`, `cert.pem` and `key.pem` in one directory
(`STACKUP_CERT_PATH`, default `~/.stackup`).
"""

from __future__ import annotations

import os
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from stackup.errors import UsageError

HOST_ENV = "STACKUP_HOST"
TLS_VERIFY_ENV = "STACKUP_TLS_VERIFY"
CERT_PATH_ENV = "STACKUP_CERT_PATH"
DEFAULT_TCP_PORT = 2376
"""Docker's port for TLS; stackup has no registered port, and the same number keeps firewall
rules written for Docker meaningful."""


class HostScheme(StrEnum):
    UNIX = "unix"
    TCP = "tcp"
    SSH = "ssh"


@dataclass(frozen=True, slots=True)
class EngineHost:
    """A parsed host URL. `path` for unix; `host` and `port` for tcp and ssh; `user` for ssh."""

    scheme: HostScheme
    host: str = ""
    port: int | None = None
    user: str | None = None
    path: Path | None = None

    @property
    def remote(self) -> bool:
        """Whether files named by the client (bind mounts, build contexts) are on another machine."""
        return self.scheme is not HostScheme.UNIX

    def __str__(self) -> str:
        match self.scheme:
            case HostScheme.UNIX:
                return f"unix://{self.path}"
            case HostScheme.TCP:
                return f"tcp://{_bracketed(self.host)}:{self.port}"
            case HostScheme.SSH:
                user = f"{self.user}@" if self.user else ""
                port = f":{self.port}" if self.port else ""
                return f"ssh://{user}{_bracketed(self.host)}{port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_host(value: str) -> EngineHost:
    """`unix:///p`, `tcp://a:p` or `ssh://u@h:p`; a bare absolute path is a unix socket."""
    if value.startswith("/"):
        return EngineHost(HostScheme.UNIX, path=Path(value))
    scheme, sep, _rest = value.partition("://")
    if not sep:
        raise UsageError(f'host "{value}": use unix:///path, tcp://ADDR:PORT or ssh://[user@]host[:port]')
    try:
        kind = HostScheme(scheme)
    except ValueError:
        raise UsageError(f'host "{value}": unknown scheme "{scheme}" (unix, tcp or ssh)') from None
    parts = urllib.parse.urlsplit(value)
    if kind is HostScheme.UNIX:
        if not parts.path.startswith("/"):
            raise UsageError(f'host "{value}": a unix socket needs an absolute path (unix:///path)')
        return EngineHost(kind, path=Path(parts.path))
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f'host "{value}": the port must be a number from 1 to 65535') from None
    if not parts.hostname:
        raise UsageError(f'host "{value}": no host name or address')
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f'host "{value}": unexpected path or query after the address')
    if kind is HostScheme.TCP:
        if parts.username:
            raise UsageError(f'host "{value}": tcp:// takes no user (certificates say who you are)')
        return EngineHost(kind, host=parts.hostname, port=DEFAULT_TCP_PORT if port is None else port)
    return EngineHost(kind, host=parts.hostname, port=port, user=parts.username)


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """The CA that signs the other side's certificate, and this side's certificate and key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, directory: Path) -> TLSFiles:
        """`ca.pem`, `cert.pem`, `key.pem` in `directory`, as Docker's `DOCKER_CERT_PATH`."""
        return cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TLSFiles:
        env = os.environ if environ is None else environ
        directory = env.get(CERT_PATH_ENV) or os.path.join(os.path.expanduser("~"), ".stackup")
        return cls.in_dir(Path(directory))

    def check(self, who: str) -> None:
        """Fail before dialing when a file is missing: an ssl error naming none of them helps no one."""
        for role, path in (("CA certificate", self.ca), ("certificate", self.cert), ("key", self.key)):
            if not path.is_file():
                raise UsageError(f"{who}: TLS {role} {path} not found (see {CERT_PATH_ENV}, --tls*)")


def _context(purpose: ssl.Purpose, files: TLSFiles, who: str) -> ssl.SSLContext:
    files.check(who)
    context = ssl.create_default_context(purpose, cafile=str(files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(files.cert), str(files.key))
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"{who}: cannot load {files.cert} with {files.key}: {exc}") from None
    return context


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """Mutual TLS, server side: a client must show a certificate signed by `files.ca`."""
    context = _context(ssl.Purpose.CLIENT_AUTH, files, "stackupd")
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(files: TLSFiles, *, verify: bool) -> ssl.SSLContext:
    """Mutual TLS, client side: our certificate, and the engine's checked against `files.ca`
    (host name included) unless `verify` is off, as `DOCKER_TLS_VERIFY` unset allows."""
    context = _context(ssl.Purpose.SERVER_AUTH, files, "stackup")
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
