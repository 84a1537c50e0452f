"""Remote engines on loopback: `stackupd --host tcp://` with mutual TLS, and `ssh://` through
Debian's sshd running `stackup system dial-stdio`.

One engine for the module, reached three ways: its Unix socket (set-up and cleanup), TCP with
client certificates made here, and ssh as root to 127.0.0.1. The CLI under test runs with an
empty STACKUP_ROOT of its own, so a local engine started by mistake would show up there.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.images.testimage import TEST_IMAGE_REF, ensure_busybox_image
from stackup.runtime.native.client import EngineClient
from stackup.runtime.native.dialers import dialer_for
from stackup.runtime.wire.hosts import parse_host
from stackup.runtime.wire.paths import EnginePaths
from tests.e2e._engine import Engine, running_engine
from tests.e2e._remote import GUARD_S, Pki, engine_env, running_sshd, start_engine

STACK = f"""\
services:
  web:
    image: {TEST_IMAGE_REF}
    command: ["sh", "-c", "echo hello-remote; i=0; while true; do echo tick $$i; i=$$((i+1)); sleep 1; done"]
    volumes: [data:/data]
volumes:
  data: {{}}
"""


@dataclass
class Remote:
    """The module's engine and the ways to reach it."""

    engine: Engine
    port: int
    server_certs: Path
    client_certs: Path
    rogue_certs: Path
    ssh_url: str
    ssh_command: str
    client_root: Path

    def env(self, transport: str, **extra: str) -> dict[str, str]:
        env = {**engine_env(), "STACKUP_ROOT": str(self.client_root)}
        if transport == "tcp":
            env |= {"STACKUP_HOST": f"tcp://127.0.0.1:{self.port}",
                    "STACKUP_CERT_PATH": str(self.client_certs)}  # fmt: skip
        else:
            env |= {"STACKUP_HOST": self.ssh_url, "STACKUP_SSH_COMMAND": self.ssh_command}
        return env | extra


@pytest.fixture(scope="module")
def remote() -> Iterator[Remote]:
    if os.geteuid() != 0:
        pytest.fail("tests on the real engine need root")
    base = Path(tempfile.mkdtemp(prefix="stackup-remote-"))
    root = base / "engine"
    try:
        pki = Pki(base / "pki")
        server = pki.issue("engine", server=True)
        client = pki.issue("client", server=False)
        rogue = Pki(base / "rogue", name="another CA").issue("client", server=False)
        ensure_busybox_image(ImageStore(EnginePaths(root)))
        tls = ["--tls-verify", "--tlscacert", str(server / "ca.pem"), "--tlscert", str(server / "cert.pem"),
               "--tlskey", str(server / "key.pem")]  # fmt: skip
        with (
            start_engine(root, "--host", "tcp://127.0.0.1:0", *tls) as (_proc, port),
            running_engine(root) as engine,
            running_sshd(base / "ssh", root) as sshd,
        ):
            assert port is not None
            client_root = base / "client"
            client_root.mkdir()
            yield Remote(engine, port, server, client, rogue, sshd.url, sshd.ssh_command, client_root)
            assert not (client_root / "stackupd.sock").exists(), "the client started a local engine"
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def cli(env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "stackup", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    if check and proc.returncode != 0:
        said = f"{proc.stdout}\n{proc.stderr}"
        raise AssertionError(f"stackup {' '.join(args)} exited {proc.returncode}\n{said}")
    return proc


@contextlib.contextmanager
def project(tmp_path: Path, remote: Remote, env: dict[str, str], text: str = STACK) -> Iterator[Path]:
    """A project directory with a unique name; taken down (with volumes) through the engine's
    own socket whatever the test did."""
    directory = tmp_path / f"rem{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    (directory / "compose.yaml").write_text(text)
    try:
        yield directory
    finally:
        cli(env, "down", "-v", cwd=directory, check=False)
        local = {**engine_env(), "STACKUP_ROOT": str(remote.engine.paths.root)}
        cli(local, "down", "-v", "-p", directory.name, check=False)


def read_until(fd: int, needle: bytes, proc: subprocess.Popen[bytes]) -> bytes:
    """Read `fd` until `needle` shows up (or the guard expires, which fails the test)."""
    seen = b""
    deadline = time.monotonic() + GUARD_S
    while needle not in seen:
        assert time.monotonic() < deadline, f"never saw {needle!r}; got {seen[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # a pty whose other end closed
                chunk = b""
            if not chunk:
                assert needle in seen, f"ended without {needle!r} (exit {proc.poll()}): {seen[-2000:]!r}"
                break
            seen += chunk
    return seen


@pytest.mark.parametrize("transport", ["tcp", "ssh"])
def test_stack_on_a_remote_engine(remote: Remote, tmp_path: Path, transport: str) -> None:
    """up / ps / logs / logs -f / exec (piped, and -it on a terminal) / cp / down, all remote."""
    env = remote.env(transport)
    with project(tmp_path, remote, env) as directory:
        cli(env, "up", "-d", cwd=directory)
        ps = cli(env, "ps", cwd=directory).stdout
        assert "-web-1" in ps and " Up " in ps, ps
        assert remote.engine.client.list_containers(project=directory.name), "not on the remote engine"

        assert "hello-remote" in cli(env, "logs", "web", cwd=directory).stdout

        follow = subprocess.Popen([sys.executable, "-m", "stackup", "logs", "-f", "web"], cwd=directory,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            assert follow.stdout is not None
            first = read_until(follow.stdout.fileno(), b"tick", follow)
            tick = int(first.split(b"tick ")[-1].split()[0]) if first.endswith(b"\n") else 0
            read_until(follow.stdout.fileno(), f"tick {tick + 2}".encode(), follow)  # new lines arrive
        finally:
            follow.terminate()
            follow.wait(GUARD_S)
            if follow.stdout is not None:
                follow.stdout.close()

        # stdin piped, then closed: `cat` ends only if end of input crosses the transport
        piped = cli(env, "exec", "-T", "web", "sh", "-c", 'read first; echo "got $first"; cat; echo end',
                    cwd=directory, stdin="one\ntwo\n")  # fmt: skip
        assert piped.stdout.splitlines() == ["got one", "two", "end"], piped.stdout
        written = cli(env, "exec", "-T", "web", "sh", "-c", "echo kept > /data/f; cat /data/f", cwd=directory)
        assert written.stdout == "kept\n"

        # cp sends and receives tar streams: this machine's files reach the remote container
        (directory / "local.txt").write_text("from the client\n")
        cli(env, "cp", "local.txt", "web:/data/copied.txt", cwd=directory)
        cli(env, "cp", "web:/data/copied.txt", "back.txt", cwd=directory)
        assert (directory / "back.txt").read_text() == "from the client\n"

        master, slave = os.openpty()
        term = subprocess.Popen([sys.executable, "-m", "stackup", "exec", "web", "sh"], cwd=directory,
                                env=env, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True)  # fmt: skip
        os.close(slave)
        try:
            read_until(master, b"# ", term)  # typed earlier, raw mode's TCSAFLUSH would drop it
            os.write(master, b"test -t 0 && echo on-a-tty-$((40+2)); exit 7\r")
            read_until(master, b"on-a-tty-42", term)
            assert term.wait(GUARD_S) == 7
        finally:
            if term.poll() is None:
                term.kill()
                term.wait()
            os.close(master)

        cli(env, "down", "-v", cwd=directory)
        assert not remote.engine.client.list_containers(project=directory.name)


@pytest.mark.parametrize("transport", ["tcp", "ssh"])
def test_attach_over_a_remote_engine(remote: Remote, transport: str) -> None:
    """attach: input reaches the process, its output comes back, the stream ends with it."""
    env = remote.env(transport)
    engine = remote.engine
    script = 'while read line; do [ "$line" = quit ] && exit 3; echo "out:$line"; done'
    record = engine.run(f"attach-{transport}", "sh", "-c", script, options={"stdin_open": True})
    try:
        with EngineClient(dialer_for(parse_host(env["STACKUP_HOST"]), env)) as client:
            stream = client.attach(record.id)
            with stream:
                stream.write(b"ping\n")
                seen = b""
                deadline = time.monotonic() + GUARD_S
                while b"out:ping\n" not in seen:
                    assert time.monotonic() < deadline, seen
                    got = stream.read()
                    assert got is not None, seen
                    seen += got[1]
                stream.write(b"quit\n")
                while stream.read() is not None:
                    pass
                assert stream.wait() == 3
    finally:
        engine.client.remove_container(record.id, force=True)


def test_client_paths_refused_by_a_remote_engine(remote: Remote, tmp_path: Path) -> None:
    """A bind mount, or a build secret read from a file, names a file on this machine: refused,
    saying what to do, before anything is created."""
    env = remote.env("tcp")
    bind = f"services:\n  web:\n    image: {TEST_IMAGE_REF}\n    volumes: ['./here:/here']\n"
    with project(tmp_path, remote, env, bind) as directory:
        (directory / "here").mkdir()
        failed = cli(env, "up", "-d", cwd=directory, check=False)
        assert failed.returncode != 0
        assert "bind mount" in failed.stderr and "another machine" in failed.stderr, failed.stderr
        assert not remote.engine.client.list_containers(project=directory.name)
    build = ("services:\n  app:\n    build: {context: ., secrets: [token]}\n"
             "secrets:\n  token: {file: ./token.txt}\n")  # fmt: skip
    with project(tmp_path, remote, env, build) as directory:
        (directory / "Dockerfile").write_text(f"FROM {TEST_IMAGE_REF}\n")
        (directory / "token.txt").write_text("s3cret\n")
        failed = cli(env, "build", cwd=directory, check=False)
        assert failed.returncode != 0
        assert "secret token names a file on this machine" in failed.stderr, failed.stderr


@pytest.mark.parametrize("transport", ["tcp", "ssh"])
def test_build_context_is_sent_to_a_remote_engine(remote: Remote, tmp_path: Path, transport: str) -> None:
    """`build:` on a remote engine: the context travels as a tar (.dockerignore applied), the
    Dockerfile's COPY and RUN see it there, and the upload is gone afterwards."""
    env = remote.env(transport)
    image = f"stackup-test/remote-built-{uuid.uuid4().hex[:8]}:latest"
    stack = (f"services:\n  app:\n    image: {image}\n    build: .\n"
             "    command: [sleep, '1000']\n")  # fmt: skip
    with project(tmp_path, remote, env, stack) as directory:
        (directory / "Dockerfile").write_text(
            f"FROM {TEST_IMAGE_REF}\nCOPY . /ctx/\nRUN cat /ctx/hello.txt > /ran.txt\n"
        )
        (directory / "hello.txt").write_text("from the client's context\n")
        (directory / "sub").mkdir()
        (directory / "sub" / "nested.txt").write_text("nested\n")
        (directory / "private.key").write_text("never sent\n")
        (directory / ".dockerignore").write_text("private.key\n")
        try:
            cli(env, "up", "-d", "--build", cwd=directory)
            script = "cat /ran.txt /ctx/sub/nested.txt; ls -a /ctx"
            ran = cli(env, "exec", "-T", "app", "sh", "-c", script, cwd=directory, check=False)
            state = cli(env, "ps", "-a", cwd=directory, check=False).stdout
            assert ran.returncode == 0, f"{ran.stdout}{ran.stderr}\n{state}"
            seen = ran.stdout
            assert seen.startswith("from the client's context\nnested\n"), seen
            assert "private.key" not in seen and "Dockerfile" in seen, seen
            uploads = remote.engine.paths.tmp / "build-contexts"
            assert not uploads.exists() or not any(uploads.iterdir()), list(uploads.iterdir())
        finally:
            cli(env, "down", cwd=directory, check=False)
            with contextlib.suppress(Exception):
                remote.engine.client.remove_image(image, force=True)


def _http_ping(sock: socket.socket) -> bytes:
    """Send `GET /_ping` and read what comes back (b'' when the engine drops the connection)."""
    try:
        sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: stackupd\r\nConnection: close\r\n\r\n")
        return sock.recv(4096)
    except (OSError, ssl.SSLError):
        return b""


def test_tls_port_lets_in_only_certified_clients(remote: Remote) -> None:
    address = ("127.0.0.1", remote.port)
    ca = str(remote.server_certs / "ca.pem")

    def tls(cert_dir: Path | None) -> bytes:
        context = ssl.create_default_context(cafile=ca)
        if cert_dir is not None:
            context.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
        with socket.create_connection(address, timeout=GUARD_S) as raw:
            try:
                sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
            except (OSError, ssl.SSLError):
                return b""
            with sock:
                return _http_ping(sock)

    assert tls(remote.client_certs).startswith(b"HTTP/1.1 200")  # the control: the way in works
    assert tls(None) == b"", "a client without a certificate got in"
    assert tls(remote.rogue_certs) == b"", "a certificate from another CA got in"
    with socket.create_connection(address, timeout=GUARD_S) as plain:
        assert not _http_ping(plain).startswith(b"HTTP/"), "plain HTTP got an answer from the TLS port"

    refused = cli(remote.env("tcp", STACKUP_CERT_PATH=str(remote.rogue_certs)), "ls", check=False)
    assert refused.returncode != 0
    assert f"no engine answers at tcp://127.0.0.1:{remote.port}" in refused.stderr, refused.stderr
    missing = cli(remote.env("tcp", STACKUP_CERT_PATH=str(remote.client_root)), "ls", check=False)
    assert missing.returncode != 0 and "ca.pem not found" in missing.stderr, missing.stderr


def test_plain_tcp_is_refused_unless_forced(tmp_path: Path) -> None:
    root = tmp_path / "engine"
    argv = [sys.executable, "-m", "stackup.runtime.engine.server", "--root", str(root), "--host", "tcp://127.0.0.1:0"]
    refused = subprocess.run(argv, env=engine_env(), capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "refusing to listen on tcp://127.0.0.1:0 without TLS" in refused.stderr
    assert not (root / "stackupd.sock").exists()

    with start_engine(root, "--host", "tcp://127.0.0.1:0", "--insecure-tcp") as (_proc, port):
        try:
            assert "WITHOUT TLS (--insecure-tcp)" in (root / "foreground.log").read_text()
            env = {**engine_env(), "STACKUP_ROOT": str(tmp_path / "client"), "STACKUP_HOST": f"tcp://127.0.0.1:{port}",
                   "STACKUP_TLS": "0"}  # fmt: skip
            status = cli(env, "engine", "status")
            assert f"socket {root / 'stackupd.sock'}" in status.stdout
        finally:
            cli({**engine_env(), "STACKUP_ROOT": str(root)}, "engine", "stop", check=False)


@pytest.mark.parametrize("transport", ["tcp", "ssh"])
def test_a_kept_alive_connection_closed_while_idle_is_reopened(remote: Remote, transport: str) -> None:
    """The engine drops idle keep-alive connections (uvicorn: after 5 s); over TLS that arrives
    as a TLS-level EOF, which must be retried on a fresh connection like a plain one."""
    env = remote.env(transport)
    with EngineClient(dialer_for(parse_host(env["STACKUP_HOST"]), env)) as client:
        client.ping()
        time.sleep(6.5)  # past the engine's keep-alive: the kept connection is closed by now
        client.ping()
        assert client.info().socket == str(remote.engine.paths.socket)


def _tar(*members: tuple[str, bytes | None, str | None]) -> io.BytesIO:
    """A tar of (name, content or None, symlink target or None) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(content or b"")
                tar.addfile(info, io.BytesIO(content or b""))
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    "members",
    [
        [("../../escaped", b"x", None)],
        [("out", None, "/etc"), ("out/passwd", b"x", None)],
        [("up", None, "../../.."), ("up/escaped", b"x", None)],
    ],
    ids=["dotdot", "symlink-absolute", "symlink-up"],
)
def test_an_uploaded_context_cannot_write_outside_itself(
    remote: Remote, members: list[tuple[str, bytes | None, str | None]]
) -> None:
    tmp = remote.engine.paths.tmp
    with pytest.raises(RuntimeFailure, match="build context upload refused"):
        remote.engine.client.upload_context(_tar(*members))
    assert not (tmp / "escaped").exists() and not (tmp.parent / "escaped").exists()
    uploads = tmp / "build-contexts"
    assert not uploads.exists() or not any(uploads.iterdir()), "a refused upload was left behind"


def test_an_absolute_name_in_an_uploaded_context_lands_inside_it(remote: Remote) -> None:
    """As Docker does with a context tar: the leading `/` is dropped, never the host's root."""
    name = f"abs-{uuid.uuid4().hex[:8]}"
    upload = remote.engine.client.upload_context(_tar((f"/{name}", b"x", None)))
    try:
        assert (Path(upload.path) / name).read_bytes() == b"x"
        assert not Path(f"/{name}").exists()
    finally:
        remote.engine.client.remove_context(upload.id)
    assert not Path(upload.path).exists()
