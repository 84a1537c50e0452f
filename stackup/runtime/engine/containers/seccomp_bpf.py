"""Compile a `linux.seccomp` object to BPF once, so crun does not redo it for every container.

Why: crun compiles the profile with libseccomp inside `crun create`, about 10 ms per container
(runtime-notes §0), and Debian's crun 1.8.1 is built without libgcrypt, which disables its own
compiled-filter cache. crun takes ready BPF from the annotation `run.oci.seccomp_bpf_data`
(base64; it then ignores `linux.seccomp` except for its `flags`), so the engine compiles each
distinct profile once, with the same libseccomp and the same steps as crun's
`libcrun_generate_seccomp` (so the filter is byte-identical), and keeps the result in
`<cache>/<sha256>.bpf`. runc ignores the annotation and still reads `linux.seccomp`.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import errno
import functools
import hashlib
import json
import os
import platform
import threading
import uuid
from pathlib import Path
from typing import Any

from stackup.errors import RuntimeFailure

ANNOTATION = "run.oci.seccomp_bpf_data"

_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
#: Actions that carry a 16-bit value (the errno, or the tracer's message).
_WITH_VALUE = {"SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000}
_OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
_SCMP_ERROR = -1  # __NR_SCMP_ERROR: a name libseccomp does not know on this architecture
_MAX_ARGS = 6


class _ArgCmp(ctypes.Structure):
    """`struct scmp_arg_cmp`."""

    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


class _Version(ctypes.Structure):
    _fields_ = (("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint))


@functools.cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise RuntimeFailure(f"cannot load libseccomp ({name}): {exc}") from exc
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.restype = None
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)]  # fmt: skip
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    return lib


def libseccomp_version() -> str:
    version = _lib().seccomp_version().contents
    return f"{version.major}.{version.minor}.{version.micro}"


def _action(name: str, value: int) -> int:
    if name in _ACTIONS:
        return _ACTIONS[name]
    if name in _WITH_VALUE:
        return _WITH_VALUE[name] | (value & 0xFFFF)
    raise RuntimeFailure(f"seccomp: unknown action {name!r}")


def _check(result: int, what: str) -> None:
    if result < 0:
        raise RuntimeFailure(f"seccomp: {what}: {os.strerror(-result)}")


def _add_rule(ctx: int, action: int, number: int, rule: dict[str, Any], name: str) -> None:
    """One syscall's rule. libseccomp refuses two comparisons of one argument in a rule, so then,
    like crun, each comparison is added as a rule of its own."""
    lib = _lib()
    args = rule.get("args") or []
    if not args:
        _check(lib.seccomp_rule_add_array(ctx, action, number, 0, None), f"rule for {name}")
        return
    compares = (_ArgCmp * _MAX_ARGS)()
    indexes = [int(arg["index"]) for arg in args[:_MAX_ARGS]]
    if any(index >= _MAX_ARGS for index in indexes):
        raise RuntimeFailure(f"seccomp: invalid argument index in the rule for {name}")
    for slot, arg in enumerate(args[:_MAX_ARGS]):
        if arg["op"] not in _OPERATORS:
            raise RuntimeFailure(f"seccomp: unknown operator {arg['op']!r} in the rule for {name}")
        compares[slot] = _ArgCmp(
            int(arg["index"]), _OPERATORS[arg["op"]], int(arg.get("value", 0)), int(arg.get("valueTwo", 0))
        )
    if len(set(indexes)) == len(indexes):
        _check(lib.seccomp_rule_add_array(ctx, action, number, len(indexes), compares), f"rule for {name}")
        return
    for slot in range(len(indexes)):  # as crun does: every comparison becomes a rule of its own
        single = ctypes.cast(ctypes.byref(compares, slot * ctypes.sizeof(_ArgCmp)), ctypes.POINTER(_ArgCmp))
        _check(lib.seccomp_rule_add_array(ctx, action, number, 1, single), f"rule for {name}")


def compile_bpf(profile: dict[str, Any]) -> bytes:
    """The BPF program crun would load for this `linux.seccomp` object."""
    lib = _lib()
    default_errno = int(profile.get("defaultErrnoRet", errno.EPERM))
    default_action = _action(profile["defaultAction"], default_errno)
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise RuntimeFailure("seccomp: seccomp_init failed")
    try:
        for arch in profile.get("architectures") or []:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token == 0:
                raise RuntimeFailure(f"seccomp: unknown architecture {arch}")
            result = lib.seccomp_arch_add(ctx, token)
            if result != -errno.EEXIST:
                _check(result, f"add architecture {arch}")
        for rule in profile.get("syscalls") or []:
            action = _action(rule["action"], int(rule.get("errnoRet", errno.EPERM)))
            if action == default_action:
                continue
            for name in rule.get("names") or []:
                number = lib.seccomp_syscall_resolve_name(name.encode())
                if number != _SCMP_ERROR:  # unknown here: crun skips it with a warning
                    _add_rule(ctx, action, number, rule, name)
        fd = os.memfd_create("stackup-seccomp", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "export")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


class BpfCache:
    """Compiled filters by profile digest: in memory, and as files that outlive the engine."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._encoded: dict[str, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(profile: dict[str, Any]) -> str:
        """sha256 of the canonical profile JSON, plus what else shapes the BPF (libseccomp, arch)."""
        text = json.dumps(profile, sort_keys=True, separators=(",", ":"))
        salt = f"{libseccomp_version()}/{platform.machine()}/"
        return hashlib.sha256((salt + text).encode()).hexdigest()

    def annotation(self, profile: dict[str, Any]) -> str:
        """The base64 value of `run.oci.seccomp_bpf_data` for `profile`, compiled at most once."""
        key = self.key(profile)
        with self._lock:
            encoded = self._encoded.get(key)
            if encoded is None:
                encoded = base64.b64encode(self._load_or_compile(key, profile)).decode()
                self._encoded[key] = encoded
            return encoded

    def _load_or_compile(self, key: str, profile: dict[str, Any]) -> bytes:
        path = self.directory / f"{key}.bpf"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        program = compile_bpf(profile)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(program)
        os.replace(tmp, path)  # atomic: another engine process may be writing the same key
        return program


@functools.cache
def cache_for(directory: Path) -> BpfCache:
    """One cache per directory per process (the engine has one; tests and benches may have several)."""
    return BpfCache(directory)
