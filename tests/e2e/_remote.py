"""Remote-engine fixtures on loopback: certificates, a `stackupd --host tcp://` and an sshd.

- `Pki`: a CA and the certificates it signs, made with `cryptography`, written as Docker lays
  them out (`ca.pem`, `cert.pem`, `key.pem` per directory).
- `start_engine`: `stackupd` in the foreground on a private root with extra arguments; returns
  the process and the TCP port it chose (`--host tcp://127.0.0.1:0`, read from its log).
- `Sshd`: Debian's openssh-server on a loopback port with a temporary host key and
  authorized_keys, started as `sshd -f CONFIG -D -p PORT` (the system's sshd config is never
  read or changed). Its sessions get this run's `STACKUP_ROOT` and this worktree's `stackup` on
  PATH through the config's `SetEnv`, so `stackup system dial-stdio` on the "remote" reaches the
  test's engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stackup.errors import EngineUnavailable
from stackup.runtime.native.client import EngineClient
from stackup.runtime.wire.paths import EnginePaths

GUARD_S = 60.0
"""Only turns a hang into a failure; nothing asserts on durations."""
REPO = Path(__file__).resolve().parents[2]


_CA_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@dataclass
class Pki:
    """A CA; `issue` writes a directory with `ca.pem`, `cert.pem` and `key.pem`."""

    directory: Path
    name: str = "stackup test CA"
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cert = (
            self._builder(_name(self.name), self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def _builder(self, subject: x509.Name, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(_name(self.name)).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        )  # fmt: skip

    def issue(self, label: str, *, server: bool) -> Path:
        """A certificate for the engine (SAN 127.0.0.1, serverAuth) or a client (clientAuth)."""
        out = self.directory / label
        out.mkdir()
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = self._builder(_name(label), key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if server:
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        (out / "ca.pem").write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        (out / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (out / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        os.chmod(out / "key.pem", 0o600)
        return out


def _answers(paths: EnginePaths) -> bool:
    with EngineClient(paths.socket, timeout_s=5) as client:
        try:
            client.ping()
        except EngineUnavailable:
            return False
    return True


def engine_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STACKUP_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


@contextlib.contextmanager
def start_engine(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int | None]]:
    """`stackupd --root ROOT ARGS` in the foreground; yields it with its TCP port (None without
    one) once its socket answers. SIGTERM and a wait on the way out: stopping the engine leaves
    containers running, so the caller removes them first."""
    paths = EnginePaths(root)
    root.mkdir(parents=True, exist_ok=True)
    log = root / "foreground.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stackup.runtime.engine.server", "--root", str(root), *args],
            stdout=out, stderr=subprocess.STDOUT, env=engine_env() | (env or {}), cwd="/",
        )  # fmt: skip
    try:
        deadline = time.monotonic() + GUARD_S
        while not _answers(paths):
            code = proc.poll()
            assert code is None, f"stackupd exited {code}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"stackupd did not answer:\n{log.read_text()}"
            time.sleep(0.1)
        found = re.search(r"listening on tcp://[^ ]+:(\d+)", log.read_text())
        yield proc, int(found.group(1)) if found else None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(GUARD_S / 2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sshd:
    """An sshd on 127.0.0.1:`port` letting in root with `client_key`; `ssh_command` reaches it."""

    directory: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def ssh_command(self) -> str:
        return f"ssh -F {self.directory / 'ssh_config'}"

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextlib.contextmanager
def running_sshd(directory: Path, engine_root: Path) -> Iterator[Sshd]:
    """Debian's sshd for one test module; stopped (and its files removed by the caller's tmp)."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(sshd).exists(), "openssh-server is not installed (scripts/setup.sh installs it)"
    directory.mkdir(parents=True, exist_ok=True)
    _keygen(directory / "host_key")
    _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "stackup"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m stackup "$@"\n')
    wrapper.chmod(0o755)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nPidFile {directory / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nX11Forwarding no\nAllowTcpForwarding no\nPrintMotd no\n"
        f"SetEnv STACKUP_ROOT={engine_root} PYTHONPATH={REPO} PATH={bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )
    host_pub = (directory / "host_key.pub").read_text().split()
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (directory / "ssh_config").write_text(
        f"Host *\n  IdentityFile {directory / 'client_key'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {directory / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n  LogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir sshd insists on
    log = open(directory / "sshd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sshd, "-f", str(config), "-D", "-e", "-p", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + GUARD_S
        while True:
            assert proc.poll() is None, f"sshd exited:\n{(directory / 'sshd.log').read_text()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert time.monotonic() < deadline, "sshd did not listen"
            time.sleep(0.1)
        yield Sshd(directory, port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
