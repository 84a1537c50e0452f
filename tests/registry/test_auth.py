"""Challenge parsing, Docker's config.json and credential helpers (real helper executables)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from stackup.registry.auth import (
    Challenge,
    Credentials,
    TokenCache,
    erase_credentials,
    load_credentials,
    parse_challenges,
    store_credentials,
    token_from_response,
)
from stackup.registry.errors import AuthenticationRequired, RegistryError
from stackup.registry.login import registry_host


def test_bearer_challenge() -> None:
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:samalba/my-app:pull,push"')
    [challenge] = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.get("realm") == "https://auth.docker.io/token"
    assert challenge.get("service") == "registry.docker.io"
    assert challenge.get("scope") == "repository:samalba/my-app:pull,push"


def test_several_challenges_unquoted_and_escaped_values() -> None:
    header = 'Basic realm="a \\"q\\" b", Bearer realm=https://x/token , service=reg,error="invalid_token"'
    basic, bearer = parse_challenges(header)
    assert basic == Challenge("basic", (("realm", 'a "q" b'),))
    assert bearer.get("realm") == "https://x/token"
    assert bearer.get("service") == "reg"
    assert bearer.get("error") == "invalid_token"
    assert parse_challenges("") == []
    assert parse_challenges("Negotiate") == [Challenge("negotiate")]


def test_token_response_and_cache() -> None:
    assert token_from_response(b'{"token": "t", "expires_in": 120}', "r") == ("t", 120.0)
    assert token_from_response(b'{"access_token": "a"}', "r") == ("a", 60.0)  # Docker's default lifetime
    with pytest.raises(AuthenticationRequired, match="no token"):
        token_from_response(b"{}", "https://realm")
    cache = TokenCache()
    cache.put(("r", "s", "scope"), "tok", 300)
    assert cache.get(("r", "s", "scope")) == "tok"
    assert cache.get(("r", "s", "other")) is None
    cache.put(("r",), "short", 0)  # expires_in 0: kept for the 1 s minimum, never negative
    cache.drop(("r", "s", "scope"))
    assert cache.get(("r", "s", "scope")) is None


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_auths_entries(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": _auth("hub", "pw:with:colons")},
        "https://reg.example.com:5000/v1/": {"auth": _auth("u", "p")},
        "plain.example": {"username": "x", "password": "y"},
        "token.example": {"auth": _auth("u", ""), "identitytoken": "refresh"},
        "empty.example": {},
    }}))
    assert load_credentials(config, "docker.io") == Credentials("hub", "pw:with:colons")
    assert load_credentials(config, "reg.example.com:5000") == Credentials("u", "p")
    assert load_credentials(config, "plain.example") == Credentials("x", "y")
    assert load_credentials(config, "token.example") == Credentials("u", "", "refresh")
    assert load_credentials(config, "empty.example") is None
    assert load_credentials(config, "other.example") is None
    assert load_credentials(tmp_path / "missing.json", "docker.io") is None


def test_broken_config_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json")
    with pytest.raises(RegistryError, match=r"config\.json.*fix or remove"):
        load_credentials(config, "docker.io")


def _helper(bin_dir: Path, name: str, store: Path) -> None:
    """A real docker-credential-NAME program keeping secrets in a JSON file, as helpers do."""
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(f"""#!/usr/bin/env python3
import json, sys
path = {str(store)!r}
try:
    data = json.load(open(path))
except FileNotFoundError:
    data = {{}}
action = sys.argv[1]
text = sys.stdin.read().strip()
if action == "get":
    if text not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    user, secret = data[text]
    print(json.dumps({{"ServerURL": text, "Username": user, "Secret": secret}}))
elif action == "store":
    item = json.loads(text); data[item["ServerURL"]] = [item["Username"], item["Secret"]]
    json.dump(data, open(path, "w"))
elif action == "erase":
    data.pop(text, None); json.dump(data, open(path, "w"))
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_credential_helpers_store_get_erase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _helper(bin_dir, "stackuptest", tmp_path / "store.json")
    _helper(bin_dir, "other", tmp_path / "other.json")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "stackuptest", "credHelpers": {"special.example": "other"}}))
    assert load_credentials(config, "docker.io") is None  # helper says "not found"
    store_credentials(config, "docker.io", Credentials("hub", "pw"))
    store_credentials(config, "special.example", Credentials(identity_token="refresh-me"))
    stored = json.loads((tmp_path / "store.json").read_text())
    assert stored == {"https://index.docker.io/v1/": ["hub", "pw"]}
    assert json.loads((tmp_path / "other.json").read_text()) == {"special.example": ["<token>", "refresh-me"]}
    auths = json.loads(config.read_text())["auths"]
    assert auths == {"https://index.docker.io/v1/": {}, "special.example": {}}
    assert load_credentials(config, "docker.io") == Credentials("hub", "pw")
    assert load_credentials(config, "special.example") == Credentials(identity_token="refresh-me")
    assert erase_credentials(config, "docker.io")
    assert load_credentials(config, "docker.io") is None


def test_missing_helper_says_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "no-such-helper-xyz"}))
    with pytest.raises(RegistryError, match="docker-credential-no-such-helper-xyz is not installed"):
        load_credentials(config, "docker.io")


def test_store_and_erase_auths(tmp_path: Path) -> None:
    config = tmp_path / "sub" / "config.json"
    store_credentials(config, "reg.example:5000", Credentials("u", "p"))
    data = json.loads(config.read_text())
    assert data == {"auths": {"reg.example:5000": {"auth": _auth("u", "p")}}}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert erase_credentials(config, "reg.example:5000")
    assert not erase_credentials(config, "reg.example:5000")
    assert json.loads(config.read_text()) == {"auths": {}}


@pytest.mark.parametrize(("server", "host"), [
    ("", "docker.io"), ("docker.io", "docker.io"), ("https://index.docker.io/v1/", "docker.io"),
    ("https://reg.example:5000/", "reg.example:5000"), ("reg.example", "reg.example"),
])
def test_registry_host(server: str, host: str) -> None:
    assert registry_host(server) == host
