"""Small short-to-long converters shared by the normalisation pass.

Each takes one raw value and returns its long form, or raises `ValueError` with a message a
person can act on; the caller reports it at the value's key path and carries on, so every
mistake in a file is found in one run.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackup import keyvalue
from stackup.spec.models_base import scalar_text


def describe(value: object) -> str:
    """`"abc"` / `42` / `a list`: how to name a wrong value in a message."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value}"'
    return scalar_text(value)


def mapping(value: object, *, keep_none: bool = False, what: str = "entry") -> dict[str, Any]:
    """A list of `KEY=VALUE` strings or a mapping -> a mapping of strings.

    `keep_none` keeps `KEY` (no `=`) and `KEY: null` as None, as `environment` needs; otherwise
    they become "" like compose-go's `Labels`.
    """
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list):
                raise ValueError(
                    f"{what} {key!s}: expected a string, number or boolean, got {describe(item)}"
                )
            out[str(key)] = None if item is None and keep_none else scalar_text(item)
        return out
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) or item is None:
                raise ValueError(f"expected KEY=VALUE strings, got {describe(item)}")
            key, rest = keyvalue.split(scalar_text(item))
            if key != key.rstrip():
                raise ValueError(f'{what} "{key.rstrip()}" is declared with a trailing space')
            if not key:
                raise ValueError(f'invalid {what} "{item}": empty key')
            out[key] = rest if rest is not None else (None if keep_none else "")
        return out
    raise ValueError(f"expected a mapping or a list of KEY=VALUE strings, got {describe(value)}")


def string_list(value: object, *, allow_numbers: bool = False) -> list[Any]:
    """A string or a list of strings -> a list (`dns: 8.8.8.8` -> `["8.8.8.8"]`)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        for item in value:
            ok = isinstance(item, str) or (
                allow_numbers and isinstance(item, int | float) and not isinstance(item, bool)
            )
            if not ok:
                raise ValueError(f"expected a list of strings, got {describe(item)} in the list")
        return [scalar_text(v) if allow_numbers else v for v in value]
    raise ValueError(f"expected a string or a list of strings, got {describe(value)}")


def shell_words(value: object) -> list[str] | None:
    """`command: npm run dev` -> `["npm", "run", "dev"]`, split as a POSIX shell would."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value, posix=True)
        except ValueError as exc:
            raise ValueError(f"cannot split command {describe(value)}: {exc}") from None
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            bad = next(v for v in value if not isinstance(v, str))
            raise ValueError(f"expected every argument to be a string, got {describe(bad)} (quote it)")
        return list(value)
    raise ValueError(f"expected a string or a list of strings, got {describe(value)}")


def expand_user(path: str, environment: Mapping[str, str]) -> str:
    """`~/x` -> `$HOME/x`, using the project's environment first (as the user ran it)."""
    if not path.startswith("~"):
        return path
    home = environment.get("HOME") or os.path.expanduser("~")
    return posixpath.join(home, path[1:].lstrip("/")) if path != "~" else home


def absolute(path: str, base: Path, environment: Mapping[str, str]) -> str:
    """A host path resolved against the project directory, `~` expanded, `..` collapsed."""
    path = expand_user(path, environment)
    if posixpath.isabs(path) or not path:
        return path
    return posixpath.normpath(posixpath.join(str(base), path))


REMOTE_PREFIXES = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")


def build_context(path: str, base: Path, environment: Mapping[str, str]) -> str:
    """Local build contexts become absolute; URLs and `service:`/`docker-image://` stay as written."""
    if "://" in path or path.startswith(("service:", *REMOTE_PREFIXES)):
        return path
    return absolute(path, base, environment)


def extra_hosts(value: object) -> dict[str, list[str]]:
    """`["db:10.0.0.2", "h=::1"]` or `{db: 10.0.0.2}` -> `{db: ["10.0.0.2"]}` (brackets dropped)."""
    hosts: dict[str, list[str]] = {}
    if isinstance(value, dict):
        for host, ips in value.items():
            items = ips if isinstance(ips, list) else ["" if ips is None else ips]
            hosts.setdefault(str(host), []).extend(scalar_text(ip) for ip in items)
    elif isinstance(value, list):
        for entry in value:
            text = scalar_text(entry)
            for sep in ("=", ":"):
                host, found, ip = text.partition(sep)
                if found:
                    hosts.setdefault(host, []).extend(ip.split(","))
                    break
            else:
                raise ValueError(f'invalid extra host "{text}": expected HOST=IP or HOST:IP')
    else:
        raise ValueError(f"expected a mapping or a list of HOST=IP strings, got {describe(value)}")
    for host, ips in hosts.items():
        if not host or any(c in host for c in ":="):
            raise ValueError(f'invalid extra host name "{host}"')
        hosts[host] = [ip[1:-1] if len(ip) > 2 and ip[0] == "[" and ip[-1] == "]" else ip for ip in ips]
    return hosts


def ulimit(value: object) -> dict[str, Any]:
    """`nofile: 65535` -> `{soft: 65535, hard: 65535}`; the long form passes through."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number or {{soft, hard}}, got {describe(value)}")
    if isinstance(value, int):
        return {"soft": value, "hard": value}
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return {"soft": int(value), "hard": int(value)}
    if isinstance(value, dict):
        return dict(value)
    raise ValueError(f"expected a number or {{soft, hard}}, got {describe(value)}")


def as_bool(value: object) -> object:
    """`"true"`/`"false"` strings (from interpolation) -> booleans; anything else unchanged."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value
