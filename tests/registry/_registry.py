"""A real registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) on loopback.

`RegistryServer` writes a config, runs `docker-registry serve CONFIG` in its own session with the
log in a file, waits for `/v2/` to answer and always stops it. Certificates come from the
`cryptography` library, htpasswd lines from `bcrypt`, and `TokenServer` is a small bearer-token
service (ES256 JWTs carrying an x5c chain the registry verifies against its rootcertbundle).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pki:
    """A CA and certificates it signs, written as PEM files."""

    directory: Path
    ca_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    ca_cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stackup test CA")])
        self.ca_cert = (self._builder(name, name, self.ca_key.public_key())
                        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                        .sign(self.ca_key, hashes.SHA256()))
        (self.directory / "ca.crt").write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _builder(subject: x509.Name, issuer: x509.Name,
                 key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1)))

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.crt"

    def issue(self, stem: str, *, server: bool = True) -> tuple[Path, Path]:
        """(cert, key) PEM paths for 127.0.0.1/localhost (server) or a client."""
        assert self.ca_cert is not None
        key = ec.generate_private_key(ec.SECP256R1())
        builder = self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]),
                                self.ca_cert.subject, key.public_key())
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        oids = x509.oid.ExtendedKeyUsageOID
        usage = oids.SERVER_AUTH if server else oids.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


def htpasswd_line(user: str, password: str) -> str:
    """What `htpasswd -B` writes: a bcrypt hash ($2y$ as Apache spells it)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{user}:{hashed.replace('$2b$', '$2y$', 1)}"


class RegistryServer:
    """One `docker-registry serve` process; use as a context manager (it always stops)."""

    def __init__(self, root: Path, *, tls: tuple[Path, Path] | None = None, htpasswd: Path | None = None,
                 token: dict[str, str] | None = None, client_ca: Path | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = root / "storage"
        self.log_path = root / "registry.log"
        self.tls = tls
        lines = ["version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: false",
                 "storage:", "  filesystem:", f"    rootdirectory: {self.storage}", "  delete:",
                 "    enabled: true", "http:", f"  addr: {self.host}", f"  secret: {secrets.token_hex(16)}"]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
            if client_ca:
                lines += ["    clientcas:", f"      - {client_ca}"]
        if htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: stackup-test", f"    path: {htpasswd}"]
        if token:
            lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in token.items()]
        self.config = root / "config.yml"
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RegistryServer:
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(["docker-registry", "serve", str(self.config)], stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not listen on {self.host}: "
                           f"{self.log_path.read_text()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def settle(self) -> int:
        """The log's size once it stopped growing: the registry writes an access-log line after the
        response went out, so the lines of requests already answered may still be on their way."""
        size, stable_since = self.log_path.stat().st_size, time.monotonic()
        deadline = stable_since + 5
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.log_path.stat().st_size
            if now != size:
                size, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= 0.3:
                break
        return size

    def log_mark(self) -> int:
        return self.settle()

    def requests_since(self, mark: int, needle: str) -> list[str]:
        """Access-log lines written after `mark` whose request line contains `needle`."""
        self.settle()
        with open(self.log_path, "rb") as log:
            log.seek(mark)
            text = log.read().decode(errors="replace")
        return [line for line in text.splitlines() if needle in line and "HTTP/1.1\"" in line]

    def blob_data(self, digest: str) -> Path:
        hexa = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"skopeo {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A bearer-token service on loopback: Basic-authenticated users get the actions they ask for on
    repositories; anonymous callers get `pull` on `public/*` only. Counts token requests by scope."""

    def __init__(self, directory: Path, users: dict[str, str], *, service: str = "stackup-test",
                 issuer: str = "stackup-test-issuer") -> None:
        self.users, self.service, self.issuer = users, service, issuer
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stackup token signer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(hours=1))
                     .not_valid_after(now + dt.timedelta(days=1))
                     .sign(self.key, hashes.SHA256()))
        self.bundle = directory / "token-signer.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: Counter[str] = Counter()
        self.refused = 0
        self.refreshes = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.handle(self)

            def do_POST(self) -> None:
                server.handle_refresh(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def registry_config(self) -> dict[str, str]:
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                "rootcertbundle": str(self.bundle)}

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def refresh_token(self, user: str) -> str:
        """The identity token (OAuth refresh token) `docker login` would have stored for `user`."""
        return f"refresh-{user}"

    def handle_refresh(self, request: BaseHTTPRequestHandler) -> None:
        """OAuth2 `grant_type=refresh_token`, as Docker uses with an identity token."""
        length = int(request.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(request.rfile.read(length).decode())
        token = form.get("refresh_token", [""])[0]
        user = next((u for u in self.users if self.refresh_token(u) == token), None)
        if form.get("grant_type") != ["refresh_token"] or user is None:
            with self._lock:
                self.refused += 1
            request.send_response(401)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        with self._lock:
            self.refreshes += 1
        scopes = form.get("scope", [""])[0].split()
        self._grant(request, user, scopes, key="access_token")

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        scopes = query.get("scope", [])
        user = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(name) != password:
                with self._lock:
                    self.refused += 1
                request.send_response(401)
                request.end_headers()
                return
            user = name
        with self._lock:
            self.requests[" ".join(scopes)] += 1
        self._grant(request, user, scopes, key="token")

    def _grant(self, request: BaseHTTPRequestHandler, user: str | None, scopes: list[str], *,
               key: str) -> None:
        access = []
        for item in scopes:
            kind, _, rest = item.partition(":")
            repo, _, actions = rest.rpartition(":")
            wanted = actions.split(",")
            granted = wanted if user else [a for a in wanted if a == "pull" and repo.startswith("public/")]
            if granted:
                access.append({"type": kind, "name": repo, "actions": granted})
        body = json.dumps({key: self.sign(user or "", access), "expires_in": 300}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def sign(self, subject: str, access: list[dict[str, object]]) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def tls_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@contextlib.contextmanager
def env_path(directory: Path) -> Iterator[None]:
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{directory}:{old}"
    try:
        yield
    finally:
        os.environ["PATH"] = old
