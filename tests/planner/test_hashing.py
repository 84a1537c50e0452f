"""The service hash: what it includes, what it leaves out, and that it is stable.

`canonical_service` serialises only the fields a stack file set; these tests hold that to the full
serialisation (`stackup config`'s form) on every service of the corpus, so the shortcut can never
make two equal services hash apart or two different ones alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackup.planner.hashing import HASH_EXCLUDED, canonical_service, service_hash
from stackup.runtime import labels as lbl
from stackup.spec import load
from stackup.spec.options import LoadOptions

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "awesome-compose"
STACKS = sorted(CORPUS.glob("*/compose.y*ml"))


def _full(service: Any) -> dict[str, Any]:
    data: dict[str, Any] = service.model_dump(mode="json", by_alias=True)
    for key in HASH_EXCLUDED:
        data.pop(key, None)
    deploy = data.get("deploy")
    if isinstance(deploy, dict):
        deploy.pop("replicas", None)
        if not deploy:
            del data["deploy"]
    return data


def _load(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("PLEX_MEDIA_PATH", str(tmp_path / "media"))
    return load(LoadOptions(files=(path,))).project


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.parent.name)
def test_canonical_form_equals_the_full_serialisation(
    stack: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = _load(stack, monkeypatch, tmp_path)
    for service in project.services.values():
        assert canonical_service(service) == _full(service)


def _one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Any:
    (tmp_path / "compose.yaml").write_text("name: h\nservices:\n  web:\n" + body)
    return _load(tmp_path / "compose.yaml", monkeypatch, tmp_path).services["web"]


@pytest.mark.parametrize(
    ("implicit", "explicit"),
    [
        (
            "    image: a\n    ports: ['8080:80']\n",
            "    image: a\n    ports: [{target: 80, published: '8080', protocol: tcp, mode: ingress}]\n",
        ),
        (
            "    image: a\n    volumes: ['./d:/d']\n",
            "    image: a\n    volumes:\n"
            "      [{type: bind, source: ./d, target: /d, bind: {create_host_path: true}}]\n",
        ),
        ("    image: a\n", "    image: a\n    privileged: false\n    environment: {}\n    labels: []\n"),
        ("    image: a\n", "    image: a\n    scale: 1\n    depends_on: {}\n    profiles: []\n"),
    ],
    ids=["port-defaults", "bind-defaults", "empty-values", "excluded-keys"],
)
def test_explicit_defaults_hash_like_omitted_ones(
    implicit: str, explicit: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = service_hash(_one(tmp_path, monkeypatch, implicit), {})
    b = service_hash(_one(tmp_path, monkeypatch, explicit), {})
    assert a.digest == b.digest, (a.config, b.config)


def test_a_changed_field_changes_the_hash_and_names_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = service_hash(_one(tmp_path, monkeypatch, "    image: a\n    environment: {X: '1'}\n"), {})
    b = service_hash(_one(tmp_path, monkeypatch, "    image: a\n    environment: {X: '2'}\n"), {})
    assert a.digest != b.digest
    changed = {
        k for k in a.components.keys() | b.components.keys() if a.components.get(k) != b.components.get(k)
    }
    assert changed == {"environment"}


def test_env_file_contents_count_not_its_path_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app.env").write_text("X=1\n")
    service = _one(tmp_path, monkeypatch, "    image: a\n    env_file: app.env\n")
    path = str(service.env_file[0].path)
    one = service_hash(service, {path: b"X=1\n"})
    two = service_hash(service, {path: b"X=2\n"})
    assert one.digest != two.digest
    assert one.config == two.config
    assert set(one.files) == {path}


def test_a_recorded_config_is_compared_as_such_and_the_digest_decides_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app.env").write_text("X=1\n")
    service = _one(tmp_path, monkeypatch, "    image: a\n    env_file: app.env\n")
    path = str(service.env_file[0].path)
    wanted = service_hash(service, {path: b"X=1\n"})
    labels = wanted.labels()
    components = wanted.components
    assert wanted.matches(labels[lbl.CONFIG_HASH], components, dict(wanted.config))
    # the same config but another env_file content: not a match
    other = service_hash(service, {path: b"X=2\n"})
    assert not other.matches(labels[lbl.CONFIG_HASH], components, dict(wanted.config))
    # a changed field in the recorded config: not a match, whatever the recorded digest says
    assert not wanted.matches(wanted.digest, components, {**wanted.config, "image": "b"})
    # no recorded config (an older container): the digest decides
    assert wanted.matches(wanted.digest, {}, None)
    assert not wanted.matches("0" * 64, {}, None)
