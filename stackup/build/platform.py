"""Build and target platforms, and the build args every Dockerfile gets without declaring them.

BuildKit defines BUILDPLATFORM/BUILDOS/BUILDARCH/BUILDVARIANT, the TARGET* equivalents and
TARGETSTAGE in the global scope (usable in FROM); inside a stage they need an `ARG NAME` to become
visible. The proxy variables (HTTP_PROXY and friends) reach RUN steps when given as build args, are
never written into the image and never part of a cache key, as in Docker.
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass

PROXY_ARGS = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
})

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "armv6l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64"}


@dataclass(frozen=True)
class Platform:
    """An OCI platform (`linux/amd64`, `linux/arm/v7`)."""

    os: str = "linux"
    arch: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(parts[0], _ARCH.get(parts[1], parts[1]), parts[2] if len(parts) == 3 else "")

    @classmethod
    def host(cls) -> Platform:
        machine = _platform.machine().lower()
        variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine, "")
        return cls("linux", _ARCH.get(machine, machine), variant)

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}" + (f"/{self.variant}" if self.variant else "")


def default_args(build: Platform, target: Platform, target_stage: str) -> dict[str, str]:
    """The automatic platform args of the global scope (build args of the same name override)."""
    return {
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDOSVERSION": "",
        "BUILDARCH": build.arch,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETOSVERSION": "",
        "TARGETARCH": target.arch,
        "TARGETVARIANT": target.variant,
        "TARGETSTAGE": target_stage or "default",
    }
