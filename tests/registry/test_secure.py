"""TLS with a private CA (certs.d), htpasswd (Basic) auth, Docker config credentials, login/logout."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from stackup.registry.client import RegistryClient
from stackup.registry.config import RegistryConfig
from stackup.registry.errors import AuthenticationRequired, RegistryUnreachable
from stackup.registry.login import login, logout
from stackup.registry.media import OCI_MANIFEST
from stackup.registry.pull import pull, resolve
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySink
from tests.registry._images import Layout, payload
from tests.registry._registry import skopeo
from tests.registry.conftest import PASSWORD, USER, Secure

Client = Callable[..., RegistryClient]


def _docker_config(path: Path, host: str, user: str, password: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return path


@pytest.fixture(scope="module")
def secure_image(secure_registry: Secure, scratch: Path) -> Reference:
    """An image copied in by skopeo over TLS with credentials."""
    layout = Layout()
    digest, raw = layout.image([{"s": payload("secure", 20_000)}, {"t": b"t"}])
    directory = layout.write(scratch / "secure-oci", {"1": (digest, raw, OCI_MANIFEST)})
    host = secure_registry.server.host
    skopeo("copy", "--dest-cert-dir", str(secure_registry.certs_dir / host), "--dest-creds",
           f"{USER}:{PASSWORD}", f"oci:{directory}:1", f"docker://{host}/private/app:1")
    return Reference.parse(f"{host}/private/app:1")


def _secure_client(make_client: Client, secure: Secure, tmp_path: Path, **fields: object) -> RegistryClient:
    fields.setdefault("docker_config", _docker_config(tmp_path / "docker" / "config.json",
                                                      secure.server.host, USER, PASSWORD))
    fields.setdefault("certs_dir", secure.certs_dir)
    return make_client(loopback_insecure=False, **fields)


def test_pull_over_tls_with_credentials_from_docker_config(secure_registry: Secure, secure_image: Reference,
                                                           tmp_path: Path, make_client: Client) -> None:
    client = _secure_client(make_client, secure_registry, tmp_path)
    assert client.endpoint(secure_image.domain).base == f"https://{secure_image.domain}"
    pulled = pull(client, secure_image, DirectorySink(tmp_path / "sink"))
    assert len(pulled.layers) == 2 and set(pulled.downloaded) == {x.digest for x in pulled.layers}


def test_untrusted_certificate_is_clear(secure_registry: Secure, secure_image: Reference, tmp_path: Path,
                                        make_client: Client) -> None:
    client = _secure_client(make_client, secure_registry, tmp_path, certs_dir=tmp_path / "empty-certs.d")
    with pytest.raises(RegistryUnreachable, match=r"TLS certificate not trusted.*ca\.crt"):
        resolve(client, secure_image)


def test_loopback_is_insecure_by_default_as_in_docker(secure_registry: Secure, secure_image: Reference,
                                                      tmp_path: Path, make_client: Client) -> None:
    """Docker skips verification for 127.0.0.0/8 registries; so do we unless told otherwise."""
    config = _docker_config(tmp_path / "c.json", secure_image.domain, USER, PASSWORD)
    client = make_client(certs_dir=tmp_path / "none", docker_config=config)
    assert resolve(client, secure_image).manifest.layers


def test_auth_failures_are_clear(secure_registry: Secure, secure_image: Reference, tmp_path: Path,
                                 make_client: Client) -> None:
    host = secure_image.domain
    anonymous = _secure_client(make_client, secure_registry, tmp_path, docker_config=tmp_path / "none.json")
    with pytest.raises(AuthenticationRequired, match=rf"^{host}/private/app:1: registry {host} requires a "
                                                     rf"login; run `stackup login {host}`"):
        resolve(anonymous, secure_image)
    wrong = _secure_client(make_client, secure_registry, tmp_path, docker_config=_docker_config(
        tmp_path / "wrong.json", host, USER, "not-the-password"))
    with pytest.raises(AuthenticationRequired, match=rf"^{host}/private/app:1: tag 1: registry {host} wants "
                                                     "credentials .*stackup login"):
        resolve(wrong, secure_image)


def test_login_checks_then_saves_and_logout_removes(secure_registry: Secure, secure_image: Reference,
                                                    tmp_path: Path) -> None:
    host = secure_image.domain
    config = RegistryConfig(loopback_insecure=False, certs_dir=secure_registry.certs_dir,
                            docker_config=tmp_path / "docker" / "config.json")
    with pytest.raises(AuthenticationRequired, match=f"login to {host} failed: the registry refused user"):
        login(f"https://{host}/", USER, "bad", config=config)
    assert not config.docker_config.exists()
    assert login(host, USER, PASSWORD, config=config) == host
    saved = json.loads(config.docker_config.read_text())["auths"][host]["auth"]
    assert base64.b64decode(saved).decode() == f"{USER}:{PASSWORD}"
    with RegistryClient(config) as client:
        assert resolve(client, secure_image).manifest.layers
    assert logout(host, config=config)
    assert json.loads(config.docker_config.read_text())["auths"] == {}
    assert not logout(host, config=config)


def test_client_certificate_pair_in_certs_dir(secure_registry: Secure, tmp_path: Path, make_client: Client,
                                              scratch: Path) -> None:
    """A registry demanding mutual TLS: the `client.cert`/`client.key` pair in certs.d is presented."""
    from tests.registry._registry import RegistryServer

    pki = secure_registry.pki
    with RegistryServer(_mkdir(scratch / "mtls"),
                        tls=pki.issue("mtls-server"), client_ca=pki.ca_path) as server:
        certs = tmp_path / "certs.d" / server.host
        certs.mkdir(parents=True)
        shutil.copy(pki.ca_path, certs / "ca.crt")
        without = make_client(loopback_insecure=False, certs_dir=tmp_path / "certs.d")
        with pytest.raises(RegistryUnreachable, match=f"cannot reach registry {server.host}"):
            without.endpoint(server.host)
        cert, key = pki.issue("client", server=False)
        shutil.copy(cert, certs / "client.cert")
        shutil.copy(key, certs / "client.key")
        with_cert = make_client(loopback_insecure=False, certs_dir=tmp_path / "certs.d")
        assert with_cert.endpoint(server.host).base == f"https://{server.host}"


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path
