"""Docker's default seccomp profile, resolved for one container.

`seccomp.json` is moby's published profile (source and licence in its header fields). Its rules
are conditional: some syscalls are allowed only when the container holds a capability
(`mount` with CAP_SYS_ADMIN, `reboot` with CAP_SYS_BOOT), only on some architectures, or only on
new enough kernels. The OCI runtime understands none of that, so, like moby's `setupSeccomp`, we
filter the rules against the container's bounding set, this machine's architecture and kernel,
and hand the runtime a plain `linux.seccomp` object (crun also gets it compiled, see
`seccomp_bpf.py`). The file is read once per process.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
from collections.abc import Collection
from importlib import resources
from typing import Any

#: `uname -m` -> the Go/libseccomp arch names the profile's `arches` filters use.
_MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "i386": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}
#: The same arch -> the profile's `archMap` key (SCMP_ARCH_*).
_ARCH_TO_SCMP = {
    "amd64": "SCMP_ARCH_X86_64",
    "x86": "SCMP_ARCH_X86",
    "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
    "loongarch64": "SCMP_ARCH_LOONGARCH64",
}


@functools.cache
def _profile() -> dict[str, Any]:
    text = resources.files("stackup.runtime.engine.containers").joinpath("seccomp.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def _kernel_version(release: str) -> tuple[int, int]:
    """`6.18.44-fc` -> (6, 18): moby compares kernel and major revision only."""
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _matches(
    flt: dict[str, Any], caps: Collection[str], arch: str, kernel: tuple[int, int]
) -> tuple[bool, ...]:
    """For one includes/excludes filter: does each present condition hold (caps: all held)?"""
    results: list[bool] = []
    if flt.get("arches"):
        results.append(arch in flt["arches"])
    if flt.get("caps"):
        results.append(all(cap in caps for cap in flt["caps"]))
    if flt.get("minKernel"):
        results.append(kernel >= _kernel_version(str(flt["minKernel"])))
    return tuple(results)


def default_seccomp(
    bounding_caps: Collection[str], *, machine: str | None = None, kernel_release: str | None = None,
    profile: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The OCI `linux.seccomp` object for a container holding `bounding_caps`.

    A rule is kept when every `includes` condition holds and no `excludes` condition does
    (an excluded cap list drops the rule if *any* listed cap is held, as in moby). `profile` is a
    profile in Docker's format (`security_opt: [seccomp=FILE]`); Docker's default when None.
    """
    profile = _profile() if profile is None else profile
    arch = _MACHINE_TO_ARCH.get(machine or platform.machine(), machine or platform.machine())
    kernel = _kernel_version(kernel_release or os.uname().release)
    architectures: list[str] = []
    for entry in profile.get("archMap", []):
        scmp = _ARCH_TO_SCMP.get(arch)
        if scmp is not None and entry["architecture"] == scmp:
            architectures = [scmp, *(entry.get("subArchitectures") or [])]
    syscalls: list[dict[str, Any]] = []
    for rule in profile["syscalls"]:
        excludes = rule.get("excludes") or {}
        if excludes:
            any_cap = any(cap in bounding_caps for cap in excludes.get("caps", []))
            other = {k: v for k, v in excludes.items() if k != "caps"}
            if any_cap or any(_matches(other, bounding_caps, arch, kernel)):
                continue
        includes = rule.get("includes") or {}
        if includes and not all(_matches(includes, bounding_caps, arch, kernel)):
            continue
        syscalls.append({k: v for k, v in rule.items() if k in ("names", "action", "args", "errnoRet")})
    result: dict[str, Any] = {
        "defaultAction": profile["defaultAction"],
        "architectures": architectures,
        "syscalls": syscalls,
    }
    if "defaultErrnoRet" in profile:
        result["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return result
