"""`RUN --mount=type=cache|bind|secret|tmpfs,...`: the CSV fields read as BuildKit reads them.

Values are substituted first (with the stage's variables, by the caller's `expand`), except `from`,
which names a stage or image and must be literal. `type=ssh` is refused: builds get no SSH agent.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Callable

from stackup.build.dockerfile.instructions import Mount, MountType, Sharing


class MountError(ValueError):
    """A mount BuildKit would refuse, or one this builder does not support."""


_KEYS = ("type", "from", "source", "target", "readonly", "id", "sharing", "required", "size", "mode",
         "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)


def _bool(key: str, value: str) -> bool:
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _uint(value: str, base: int, what: str) -> int:
    try:
        n = int(value, base)
    except ValueError:
        raise MountError(f"invalid value {value} for {what}") from None
    if n < 0 or n >= 2**32 or value.startswith(("+", "-")):
        raise MountError(f"invalid value {value} for {what}")
    return n


def _size(value: str) -> int:
    m = _SIZE.fullmatch(value.strip())
    if m is None:
        raise MountError(f"invalid value for size: {value}")
    power = " kmgtp".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * 1024**power)


def split_fields(text: str) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise MountError(f"failed to parse csv mounts: {exc}") from None
    return rows[0] if rows else []


def check_from(text: str) -> None:
    """At parse time: `from=` may not use variables (BuildKit's rule; define a stage instead)."""
    for field in split_fields(text):
        key, _, value = field.partition("=")
        idx = value.find("$")
        if key.lower() == "from" and idx != -1 and idx != len(value) - 1:
            raise MountError("'from' doesn't support variable expansion, define alias stage instead")


def parse_mount(text: str, expand: Callable[[str], str]) -> Mount:
    """One `--mount` value -> `Mount` (defaults: bind, read-only unless cache or tmpfs)."""
    kind = MountType.BIND
    fields: dict[str, object] = {}
    readonly: bool | None = None
    for field in split_fields(text):
        key, has_value, value = field.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro"):
                readonly = True
            elif key in ("readwrite", "rw"):
                readonly = False
            elif key == "required":
                if kind is not MountType.SECRET:
                    raise MountError(f"unexpected key '{key}' for mount type '{kind}'")
                fields["required"] = True
            else:
                raise MountError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key != "from":
            value = expand(value)
        if key == "type":
            low = value.lower()
            if low == "ssh":
                raise MountError("RUN --mount=type=ssh is not supported: builds get no SSH agent; use a "
                                 "secret mount for a key, or fetch in a previous stage")
            try:
                kind = MountType(low)
            except ValueError:
                hint = difflib.get_close_matches(low, [m.value for m in MountType], n=1)
                extra = f" (did you mean {hint[0]}?)" if hint else ""
                raise MountError(f'unsupported mount type "{value}"{extra}') from None
        elif key == "from":
            fields["from_"] = value
        elif key in ("source", "src"):
            fields["source"] = value
        elif key in ("target", "dst", "destination"):
            fields["target"] = value
        elif key in ("readonly", "ro"):
            readonly = _bool(key, value)
        elif key in ("readwrite", "rw"):
            readonly = not _bool(key, value)
        elif key == "required":
            if kind is not MountType.SECRET:
                raise MountError(f"unexpected key '{key}' for mount type '{kind}'")
            fields["required"] = _bool(key, value)
        elif key == "size":
            if kind is not MountType.TMPFS:
                raise MountError(f"unexpected key '{key}' for mount type '{kind}'")
            fields["size"] = _size(value)
        elif key == "id":
            fields["cache_id"] = value
        elif key == "sharing":
            try:
                fields["sharing"] = Sharing(value.lower())
            except ValueError:
                raise MountError(f'unsupported sharing value "{value}"') from None
        elif key in ("mode", "uid", "gid"):
            fields[key] = _uint(value, 8 if key == "mode" else 10, key)
        elif key == "env":
            fields["env"] = value
        else:
            hint = difflib.get_close_matches(key, _KEYS, n=1)
            extra = f" (did you mean {hint[0]}?)" if hint else ""
            raise MountError(f"unexpected key '{key}' in '{field}'{extra}")
    if kind not in (MountType.SECRET, MountType.CACHE):
        for key in ("mode", "uid", "gid"):
            if key in fields:
                raise MountError(f'{key} not allowed for "{kind}" type mounts')
    if readonly is None:
        readonly = kind not in (MountType.CACHE, MountType.TMPFS)
    if kind is MountType.SECRET:
        if fields.get("from_"):
            raise MountError("secret mount should not have a from")
        if "sharing" in fields:
            raise MountError("secret mount should not define sharing")
        if not (fields.get("source") or fields.get("target") or fields.get("cache_id")):
            raise MountError("invalid secret mount. one of source, target required")
        if fields.get("source") and fields.get("cache_id"):
            raise MountError("both source and id can't be set")
    elif "sharing" in fields and kind is not MountType.CACHE:
        raise MountError(f"invalid cache sharing set for {kind} mount")
    elif "env" in fields:
        raise MountError(f"env not allowed for {kind} type mounts")
    if kind is not MountType.SECRET and not fields.get("target"):
        raise MountError(f"{kind} mount requires a target")
    mount = Mount(type=kind, readonly=readonly, **fields)  # type: ignore[arg-type]
    if kind is MountType.SECRET and not mount.target:
        mount = Mount(type=kind, readonly=readonly, **{**fields, "target": f"/run/secrets/{mount.secret_id}"})  # type: ignore[arg-type]
    return mount
