"""Registry authentication: challenges, bearer tokens, and the credentials Docker keeps.

A registry answers 401 with `WWW-Authenticate: Basic realm=...` or `Bearer realm=...,service=...,
scope=...`. Basic sends the credentials on every request; Bearer trades them (or nothing, for
anonymous pulls) at the realm for a short-lived token per scope, which `TokenCache` keeps until
it expires, so pulling ten layers of one repository costs one token request.

Credentials come from Docker's config.json exactly as the Docker CLI finds them: `credHelpers`
for that host, else `credsStore`, else the base64 `auth` of `auths` (`identitytoken` becomes an
OAuth refresh token). Helpers run as `docker-credential-NAME get|store|erase`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from stackup.registry.errors import AuthenticationRequired, RegistryError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HELPER_TIMEOUT = 30.0
_TOKEN_MARGIN = 5.0  # refresh a little early so a token never expires in flight


class Scheme(StrEnum):
    BASIC = "basic"
    BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a WWW-Authenticate header; `params` keys are lowercased."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        return dict(self.params).get(key)


def parse_challenges(header: str) -> list[Challenge]:
    """RFC 7235 challenges: `Scheme k=v, k="quoted, with commas", Other k=v`."""
    challenges: list[tuple[str, list[tuple[str, str]]]] = []
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        token = header[start:i]
        if not token:
            break
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and challenges:
            value, i = _param_value(header, j + 1)
            challenges[-1][1].append((token.lower(), value))
        else:
            challenges.append((token.lower(), []))
    return [Challenge(scheme, tuple(params)) for scheme, params in challenges]


def _param_value(header: str, i: int) -> tuple[str, int]:
    n = len(header)
    while i < n and header[i] in " \t":
        i += 1
    if i < n and header[i] == '"':
        out: list[str] = []
        i += 1
        while i < n and header[i] != '"':
            if header[i] == "\\" and i + 1 < n:
                i += 1
            out.append(header[i])
            i += 1
        return "".join(out), i + 1
    start = i
    while i < n and header[i] not in ",":
        i += 1
    return header[start:i].strip(), i


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, or an identity token (an OAuth refresh token) for bearer realms."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def config_key(host: str) -> str:
    """The key Docker files a registry's credentials under (Docker Hub keeps its legacy URL)."""
    return DOCKER_HUB_KEY if host in _HUB_HOSTS else host


def _hostname(key: str) -> str:
    """Docker's `ConvertToHostname`: drop scheme and path so `https://h:5000/v1/` matches `h:5000`."""
    stripped = key.split("://", 1)[-1]
    return stripped.split("/", 1)[0]


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read Docker credentials file {path}: {exc}; fix or remove it") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"Docker credentials file {path} is not a JSON object; fix or remove it")
    return data


def _helper_for(data: dict[str, Any], host: str) -> str | None:
    helpers = data.get("credHelpers") or {}
    for key in (host, config_key(host)):
        if key in helpers:
            return str(helpers[key])
    store = data.get("credsStore")
    return str(store) if store else None


def run_helper(helper: str, action: str, payload: str) -> str | None:
    """Run `docker-credential-HELPER ACTION` with `payload` on stdin, as the Docker CLI does.

    Returns stdout, or None when a `get` finds nothing (the helper's "credentials not found").
    """
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run([program, action], input=payload, capture_output=True, text=True,
                              timeout=_HELPER_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise RegistryError(f"credential helper {program} is not installed; install it or remove "
                            f"{helper!r} from credsStore/credHelpers in the Docker config") from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryError(f"credential helper {program} {action} did not answer in "
                            f"{_HELPER_TIMEOUT:.0f}s") from exc
    if done.returncode != 0:
        message = (done.stdout.strip() or done.stderr.strip())
        if action == "get" and "credentials not found" in message.lower():
            return None
        raise RegistryError(f"credential helper {program} {action} failed: {message or done.returncode}")
    return done.stdout


def load_credentials(config_path: Path, host: str) -> Credentials | None:
    """The credentials Docker would use for `host`, or None for anonymous access."""
    data = _read_config(config_path)
    helper = _helper_for(data, host)
    if helper:
        out = run_helper(helper, "get", config_key(host))
        if out is None:
            return None
        try:
            found = json.loads(out)
        except ValueError as exc:
            raise RegistryError(f"credential helper docker-credential-{helper} printed invalid JSON") from exc
        username, secret = str(found.get("Username", "")), str(found.get("Secret", ""))
        if username == "<token>":
            return Credentials(identity_token=secret)
        return Credentials(username, secret)
    auths = data.get("auths") or {}
    entry = auths.get(config_key(host))
    if entry is None:
        entry = next((v for k, v in auths.items() if _hostname(k) == host), None)
    if not isinstance(entry, dict):
        return None
    username, password = str(entry.get("username", "")), str(entry.get("password", ""))
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=False).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{config_path}: auths[{config_key(host)!r}].auth is not base64 "
                                "of user:password; log in again") from exc
        username, _, password = decoded.partition(":")
    token = str(entry.get("identitytoken", ""))
    if not (username or password or token):
        return None
    return Credentials(username, password, token)


def store_credentials(config_path: Path, host: str, credentials: Credentials) -> None:
    """Save credentials where Docker would: the host's helper, else `auths` (file mode 0600)."""
    data = _read_config(config_path)
    helper = _helper_for(data, host)
    key = config_key(host)
    if helper:
        username = "<token>" if credentials.identity_token else credentials.username
        secret = credentials.identity_token or credentials.password
        run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": username, "Secret": secret}))
        data.setdefault("auths", {})[key] = {}
    else:
        raw = f"{credentials.username}:{credentials.password}".encode()
        entry: dict[str, str] = {"auth": base64.b64encode(raw).decode()}
        if credentials.identity_token:
            entry["identitytoken"] = credentials.identity_token
        data.setdefault("auths", {})[key] = entry
    _write_config(config_path, data)


def erase_credentials(config_path: Path, host: str) -> bool:
    """Forget `host`'s credentials (helper and `auths`); False if there were none."""
    data = _read_config(config_path)
    key = config_key(host)
    helper = _helper_for(data, host)
    found = False
    if helper:
        with contextlib.suppress(RegistryError):  # helpers fail on erasing what they lack
            run_helper(helper, "erase", key)
            found = True
    auths = data.get("auths") or {}
    for name in [k for k in auths if k == key or _hostname(k) == host]:
        del auths[name]
        found = True
    if found:
        _write_config(config_path, data)
    return found


def _write_config(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent="\t")
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires: float


class TokenCache:
    """Bearer tokens keyed by (realm, service, scopes, identity); thread-safe, expiry-aware."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expires <= time.monotonic():
                self._tokens.pop(key, None)
                return None
            return token.value

    def put(self, key: tuple[str, ...], value: str, lifetime: float) -> None:
        with self._lock:
            self._tokens[key] = Token(value, time.monotonic() + max(lifetime - _TOKEN_MARGIN, 1.0))

    def drop(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(key, None)


def token_from_response(body: bytes, realm: str) -> tuple[str, float]:
    """(token, lifetime seconds) from a token endpoint's JSON (`token` or `access_token`)."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise AuthenticationRequired(f"token endpoint {realm} returned invalid JSON") from exc
    token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthenticationRequired(f"token endpoint {realm} returned no token")
    lifetime = data.get("expires_in")
    return token, float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 60.0
