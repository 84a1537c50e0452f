"""Bearer-token authentication against a real registry (`auth: token`) and our own token service.

The registry verifies every token's ES256 signature and x5c chain against its rootcertbundle, its
issuer, audience, expiry and granted actions, so these tests exercise the real protocol end to end.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stackup.registry.client import RegistryClient
from stackup.registry.config import RegistryConfig
from stackup.registry.errors import AuthenticationRequired
from stackup.registry.login import login
from stackup.registry.media import OCI_MANIFEST, ImageManifest, parse_manifest
from stackup.registry.pull import pull, resolve
from stackup.registry.push import PushResult, push_blob, push_image
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySink, DirectorySource
from tests.registry._images import Layout, payload
from tests.registry._registry import skopeo
from tests.registry.conftest import PASSWORD, USER, Tokened

Client = Callable[..., RegistryClient]


def _config(path: Path, host: str, password: str = PASSWORD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return path


@pytest.fixture(scope="module")
def images(token_registry: Tokened, scratch: Path) -> Layout:
    layout = Layout()
    digest, raw = layout.image([{"a": payload("tok-a", 40_000)}, {"b": payload("tok-b", 40_000)},
                                {"c": b"c"}])
    directory = layout.write(scratch / "token-oci", {"1": (digest, raw, OCI_MANIFEST)})
    host = token_registry.server.host
    for repo in ("team/app", "public/app"):
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"{USER}:{PASSWORD}",
               f"oci:{directory}:1", f"docker://{host}/{repo}:1")
    return layout


def test_one_token_per_scope_serves_the_whole_pull(token_registry: Tokened, images: Layout, tmp_path: Path,
                                                   make_client: Client) -> None:
    host = token_registry.server.host
    client = make_client(docker_config=_config(tmp_path / "c.json", host))
    before = token_registry.tokens.requests["repository:team/app:pull"]
    pulled = pull(client, Reference.parse(f"{host}/team/app:1"), DirectorySink(tmp_path / "sink"))
    assert len(pulled.downloaded) == 3
    # manifest + config + 3 layers, all on one token
    assert token_registry.tokens.requests["repository:team/app:pull"] == before + 1
    pull(client, Reference.parse(f"{host}/team/app:1"), DirectorySink(tmp_path / "sink2"))
    assert token_registry.tokens.requests["repository:team/app:pull"] == before + 1  # cached


def test_anonymous_token_for_public_and_refusal_for_private(token_registry: Tokened, images: Layout,
                                                            tmp_path: Path, make_client: Client) -> None:
    host = token_registry.server.host
    anonymous = make_client(docker_config=tmp_path / "none.json")
    assert resolve(anonymous, Reference.parse(f"{host}/public/app:1")).manifest.layers
    with pytest.raises(AuthenticationRequired, match=rf"^{host}/team/app:1: tag 1: registry {host} wants "
                                                     r"credentials .*run `stackup login"):
        resolve(anonymous, Reference.parse(f"{host}/team/app:1"))


def test_wrong_password_is_refused_by_the_token_service(token_registry: Tokened, images: Layout,
                                                        tmp_path: Path, make_client: Client) -> None:
    host = token_registry.server.host
    client = make_client(docker_config=_config(tmp_path / "c.json", host, "wrong"))
    refused = token_registry.tokens.refused
    with pytest.raises(AuthenticationRequired, match=rf"registry {host} refused the credentials of {USER}; "
                                                     rf"run `stackup login {host}`"):
        resolve(client, Reference.parse(f"{host}/team/app:1"))
    assert token_registry.tokens.refused == refused + 1


def test_push_with_token_and_mount_scope(token_registry: Tokened, images: Layout, tmp_path: Path,
                                         make_client: Client) -> None:
    host = token_registry.server.host
    client = make_client(docker_config=_config(tmp_path / "c.json", host))
    for digest, data in images.blobs.items():
        path = tmp_path / "src" / "blobs" / "sha256" / digest.removeprefix("sha256:")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    source = DirectorySource(tmp_path / "src")
    raw = next(d for d in images.blobs.values() if b'"schemaVersion"' in d)
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    origin, target = Reference.parse(f"{host}/team/app:1"), Reference.parse(f"{host}/team/copy:1")
    assert push_blob(client, target, manifest.layers[0], source, mount_from=[origin]) is PushResult.MOUNTED
    assert token_registry.tokens.requests["repository:team/copy:pull,push repository:team/app:pull"] == 1
    push_image(client, target, raw, source)
    assert resolve(client, target).manifest_raw == raw


def test_login_against_a_token_registry(token_registry: Tokened, tmp_path: Path) -> None:
    host = token_registry.server.host
    config = RegistryConfig(docker_config=tmp_path / "docker" / "config.json")
    with pytest.raises(AuthenticationRequired):
        login(host, USER, "wrong", config=config)
    assert not config.docker_config.exists()
    login(host, USER, PASSWORD, config=config)
    assert host in json.loads(config.docker_config.read_text())["auths"]


def test_identity_token_is_exchanged_with_oauth_refresh(token_registry: Tokened, images: Layout,
                                                       tmp_path: Path, make_client: Client) -> None:
    host = token_registry.server.host
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"auths": {host: {
        "auth": base64.b64encode(b"<token>:").decode(),
        "identitytoken": token_registry.tokens.refresh_token(USER)}}}))
    refreshes = token_registry.tokens.refreshes
    pulled = pull(make_client(docker_config=config), Reference.parse(f"{host}/team/app:1"),
                  DirectorySink(tmp_path / "sink"))
    assert len(pulled.layers) == 3
    assert token_registry.tokens.refreshes == refreshes + 1
    config.write_text(json.dumps({"auths": {host: {"identitytoken": "revoked"}}}))
    with pytest.raises(AuthenticationRequired, match="refused the credentials of the identity token"):
        resolve(make_client(docker_config=config), Reference.parse(f"{host}/team/app:1"))
