"""Platforms (`linux/arm64/v8`) as Compose's `platform:` and manifest lists write them.

Normalisation and matching follow containerd's `platforms` package, which Docker uses: `aarch64`
is `arm64`, `x86_64` is `amd64`, `armhf` is `arm/v7`; `arm64` without a variant is `v8`; an
`arm/v7` machine also runs `v6` and `v5` images (preferred in that order), and `amd64/v3` runs
`v2`, `v1`. A platform string may omit parts: `arm64` means `linux/arm64`, `linux` means this
machine's architecture on Linux.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from stackup.registry.errors import InvalidReference

_ARCH_ALIASES: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "arm": ("arm", ""),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"),
    "i386": ("386", ""), "i686": ("386", ""), "386": ("386", ""),
}
_OS_ALIASES = {"macos": "darwin"}
_KNOWN_OS = {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
             "aix", "android", "ios", "plan9", "dragonfly", "js", "wasip1", "zos", "unknown"}
# Variants a machine of (arch, variant) can run, best first.
_COMPATIBLE: dict[tuple[str, str], tuple[str, ...]] = {
    ("arm", "v8"): ("v8", "v7", "v6", "v5"),
    ("arm", "v7"): ("v7", "v6", "v5"),
    ("arm", "v6"): ("v6", "v5"),
    ("arm", "v5"): ("v5",),
    ("arm64", "v8"): ("v8", ""),
    ("amd64", "v4"): ("v4", "v3", "v2", "v1", ""),
    ("amd64", "v3"): ("v3", "v2", "v1", ""),
    ("amd64", "v2"): ("v2", "v1", ""),
    ("amd64", ""): ("", "v1"),
}

T = TypeVar("T")


def _normalise_variant(arch: str, variant: str) -> str:
    variant = variant.lower()
    if variant and variant[0].isdigit():
        variant = "v" + variant
    if arch == "arm64" and variant in ("", "v8"):
        return "v8"
    if arch == "arm" and variant == "":
        return "v7"
    if arch == "amd64" and variant == "v1":
        return ""
    return variant


@dataclass(frozen=True, slots=True)
class Platform:
    """os/architecture[/variant], normalised so equal platforms compare equal."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def of(cls, os: str, architecture: str, variant: str = "") -> Platform:
        os = _OS_ALIASES.get(os.lower(), os.lower())
        arch, implied = _ARCH_ALIASES.get(architecture.lower(), (architecture.lower(), ""))
        return cls(os, arch, _normalise_variant(arch, variant or implied))

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/arm64/v8`, `linux/amd64`, `arm64`, `linux`; raises InvalidReference with the rule."""
        parts = text.strip().split("/")
        host = host_platform()
        if not text.strip() or len(parts) > 3 or any(not p for p in parts):
            raise InvalidReference(
                f"invalid platform {text!r}: expected os[/arch[/variant]], e.g. linux/amd64, linux/arm64/v8")
        if len(parts) == 1:
            word = parts[0].lower()
            if word in _KNOWN_OS or word in _OS_ALIASES:
                return cls.of(word, host.architecture, host.variant if word == host.os else "")
            if word in _ARCH_ALIASES:
                return cls.of(host.os, word)
            raise InvalidReference(f"invalid platform {text!r}: {word!r} is neither OS nor architecture")
        if parts[0].lower() not in _KNOWN_OS and parts[0].lower() not in _OS_ALIASES:
            raise InvalidReference(f"invalid platform {text!r}: unknown operating system {parts[0]!r}")
        return cls.of(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def from_descriptor(cls, data: dict[str, Any]) -> Platform:
        return cls.of(str(data.get("os", "")), str(data.get("architecture", "")),
                      str(data.get("variant", "")))

    def variants(self) -> tuple[str, ...]:
        """The variants this platform can run, best first."""
        return _COMPATIBLE.get((self.architecture, self.variant), (self.variant,))

    def can_run(self, other: Platform) -> bool:
        return (other.os == self.os and other.architecture == self.architecture
                and other.variant in self.variants())

    def __str__(self) -> str:
        shown = self.variant if (self.architecture, self.variant) not in (("arm64", "v8"),) else ""
        return "/".join(p for p in (self.os, self.architecture, shown) if p)


def host_platform() -> Platform:
    """This machine's platform (always Linux: stackup runs containers on Linux only)."""
    return Platform.of("linux", _platform.machine())


def select(candidates: Iterable[tuple[Platform | None, T]], wanted: Platform) -> T | None:
    """The best candidate `wanted` can run: exact variant first, then older ones; a candidate
    with no platform at all is a last resort (containerd accepts it too)."""
    order = wanted.variants()
    best: tuple[int, T] | None = None
    fallback: T | None = None
    for candidate_platform, value in candidates:
        if candidate_platform is None:
            fallback = value if fallback is None else fallback
            continue
        if not wanted.can_run(candidate_platform):
            continue
        rank = order.index(candidate_platform.variant)
        if best is None or rank < best[0]:
            best = (rank, value)
    return best[1] if best is not None else fallback


def describe(platforms: Sequence[Platform]) -> str:
    return ", ".join(sorted({str(p) for p in platforms})) or "none"
