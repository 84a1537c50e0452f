"""Service volume short syntax -> long form, host paths made absolute.

`[SOURCE:]TARGET[:OPTIONS]` as compose-go's `format.ParseVolume` reads it: a source starting
with `.`, `/` or `~` is a bind mount (with `create_host_path: true`, Docker's historical
behaviour), anything else names a volume; a lone target is an anonymous volume. Relative bind
sources are resolved against the project directory here, once, so no later stage has to know
where the stack file lived.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackup.spec.normalize_values import absolute, as_bool, describe, mapping
from stackup.spec.units import parse_bytes

_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_IGNORED_OPTIONS = ("cached", "delegated", "consistent")  # macOS-only consistency hints


def _clean_target(target: str) -> str:
    if not target:
        return target
    cleaned = posixpath.normpath(target)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _is_host_path(source: str) -> bool:
    return source[:1] in (".", "/", "~")


def parse_volume(spec: str) -> dict[str, Any]:
    """One short-syntax mount -> its long form (bind sources still relative); ValueError if bad."""
    if not spec:
        raise ValueError("invalid empty volume spec")
    parts = spec.split(":")
    if any(not part for part in parts):
        raise ValueError(f'invalid volume "{spec}": empty section between colons')
    if len(parts) > 3:
        raise ValueError(f'invalid volume "{spec}": too many colons')
    volume: dict[str, Any] = {}
    source = parts[0] if len(parts) > 1 else ""
    target = parts[1] if len(parts) > 1 else parts[0]
    read_only = False
    bind: dict[str, Any] = {}
    nocopy = False
    if len(parts) == 3:
        for option in parts[2].split(","):
            if option in ("ro", "rw"):
                read_only = option == "ro"
            elif option == "nocopy":
                nocopy = True
            elif option in _PROPAGATIONS:
                bind["propagation"] = option
            elif option in ("z", "Z"):
                bind["selinux"] = option
            elif option not in _IGNORED_OPTIONS:
                raise ValueError(
                    f'invalid volume "{spec}": unknown option "{option}" '
                    "(use ro, rw, nocopy, z, Z or a propagation mode)"
                )
    if source and _is_host_path(source):
        volume["type"] = "bind"
        volume["source"] = source
    else:
        volume["type"] = "volume"
        if source:
            volume["source"] = source
    volume["target"] = _clean_target(target)
    if read_only:
        volume["read_only"] = True
    if volume["type"] == "bind":
        volume["bind"] = {**bind, "create_host_path": True}
    else:
        volume["volume"] = {"nocopy": True} if nocopy else {}
    return volume


def volume_long(value: dict[str, Any], base: Path, environment: Mapping[str, str]) -> dict[str, Any]:
    """Resolve a long-form mount: absolute bind source, clean target, typed sub-options."""
    out = dict(value)
    kind = out.get("type")
    if kind is None:
        raise ValueError('missing "type" (bind, volume, tmpfs, image, npipe or cluster)')
    if kind == "bind":
        source = out.get("source")
        if not isinstance(source, str) or not source:
            raise ValueError('a bind mount needs a "source" path')
        out["source"] = absolute(source, base, environment)
    target = out.get("target")
    if isinstance(target, str):
        out["target"] = _clean_target(target)
    if "read_only" in out:
        out["read_only"] = as_bool(out["read_only"])
    bind = out.get("bind")
    if isinstance(bind, dict):
        bind = dict(bind)
        bind["create_host_path"] = as_bool(bind.get("create_host_path", True))
        out["bind"] = bind
    volume = out.get("volume")
    if isinstance(volume, dict) and "labels" in volume:
        out["volume"] = {**volume, "labels": mapping(volume["labels"], what="label")}
    tmpfs = out.get("tmpfs")
    if isinstance(tmpfs, dict):
        tmpfs = dict(tmpfs)
        if "size" in tmpfs:
            tmpfs["size"] = parse_bytes(tmpfs["size"])
        mode = tmpfs.get("mode")
        if isinstance(mode, str):
            try:
                tmpfs["mode"] = int(mode, 8)
            except ValueError:
                raise ValueError(f"invalid tmpfs mode {describe(mode)}: expected octal digits") from None
        out["tmpfs"] = tmpfs
    return out


def normalize_volume(value: object, base: Path, environment: Mapping[str, str]) -> dict[str, Any]:
    """Short or long syntax -> resolved long form."""
    if isinstance(value, str):
        return volume_long(parse_volume(value), base, environment)
    if isinstance(value, dict):
        return volume_long(value, base, environment)
    raise ValueError(f"expected a volume string or mapping, got {describe(value)}")
