"""Fixtures: real registries on loopback (plain, TLS + htpasswd, bearer tokens), always stopped,
their temporary directories always removed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackup.registry.client import RegistryClient
from stackup.registry.config import RegistryConfig
from tests.registry._registry import Pki, RegistryServer, TokenServer, htpasswd_line

USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="stackup-registry-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Secure:
    server: RegistryServer
    pki: Pki
    certs_dir: Path


@pytest.fixture(scope="module")
def plain_registry(scratch: Path) -> Iterator[RegistryServer]:
    with RegistryServer(Path(tempfile.mkdtemp(dir=scratch))) as server:
        yield server


@pytest.fixture(scope="module")
def secure_registry(scratch: Path) -> Iterator[Secure]:
    root = Path(tempfile.mkdtemp(dir=scratch))
    pki = Pki(root / "pki")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(htpasswd_line(USER, PASSWORD) + "\n")
    with RegistryServer(root, tls=pki.issue("server"), htpasswd=htpasswd) as server:
        certs_dir = root / "certs.d"
        (certs_dir / server.host).mkdir(parents=True)
        shutil.copy(pki.ca_path, certs_dir / server.host / "ca.crt")
        yield Secure(server, pki, certs_dir)


@dataclass
class Tokened:
    server: RegistryServer
    tokens: TokenServer


@pytest.fixture(scope="module")
def token_registry(scratch: Path) -> Iterator[Tokened]:
    root = Path(tempfile.mkdtemp(dir=scratch))
    with TokenServer(root, {USER: PASSWORD}) as tokens, \
            RegistryServer(root, token=tokens.registry_config()) as server:
        yield Tokened(server, tokens)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., RegistryClient]]:
    """Clients with a private Docker config (never the machine's ~/.docker), all closed at the end."""
    made: list[RegistryClient] = []

    def make(**fields: object) -> RegistryClient:
        fields.setdefault("docker_config", tmp_path / "docker" / "config.json")
        fields.setdefault("retries", 1)
        client = RegistryClient(RegistryConfig(**fields))  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
