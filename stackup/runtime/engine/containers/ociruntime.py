"""The OCI runtime that drives containers: crun when installed, runc otherwise.

Why crun: it is lighter than runc and takes a precompiled seccomp filter (`seccomp_bpf.py`);
together they halve stackup's create+start of a container here (44 ms instead of 83 ms median,
`bench/bench_container_start.py`) and cut the runtime's share of a 50-service `up` from about
45% of the CPU to about 17%.
`STACKUP_OCI_RUNTIME=crun|runc` in the engine's environment overrides the choice.

This module owns what differs between the two: the binary, the engine-private state root
(`$STACKUP_ROOT/run/<name>`, never the system's), and how a process must be started to use it.

Hybrid cgroups: crun 1.8.1 refuses to run when cgroup2 sits beside the v1 controllers with a
controller of its own ("cgroups in hybrid mode not supported"), as on the dev and CI machines
(`hugetlb` on /sys/fs/cgroup/unified). So every crun process that sets up cgroups is started in
a private mount namespace where that mount is detached (`OciRuntime.in_view`). There crun sees
plain v1 and puts limits where runc puts them; the host's mount table is untouched. A fresh
namespace per call needs no state that could be lost when the engine dies. conmon, which lives
as long as its container, stays in the engine's namespace: only the `crun create` it runs
enters a private one, through `nsenter` (`OciRuntime.create_options`).

Which runtime holds an existing container is read from the state roots, not the environment, so
`stackup exec` in the CLI, or an engine restarted with the other runtime, still drives every
container with the runtime that created it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from stackup.errors import RuntimeFailure, UsageError
from stackup.runtime.engine import linux
from stackup.runtime.wire.paths import EnginePaths

_T = TypeVar("_T")

ENV = "STACKUP_OCI_RUNTIME"
#: Mounts a long-lived copy must not hold: container rootfs overlays, pinned network namespaces.
_PINNED_TYPES = ("overlay", "nsfs")
#: Runtime commands that set up no cgroup: they run in the engine's own view (see `OciRuntime.run`).
_PLAIN_COMMANDS = frozenset({"state", "start", "kill"})
#: util-linux's, essential on Debian: enters a namespace held by a file, then execs the runtime.
NSENTER = "/usr/bin/nsenter"


class RuntimeName(StrEnum):
    CRUN = "crun"
    RUNC = "runc"


#: Preferred first when nothing is configured.
PREFERENCE = (RuntimeName.CRUN, RuntimeName.RUNC)
_LOCATIONS = {
    RuntimeName.CRUN: ("/usr/bin/crun", "/usr/sbin/crun", "/usr/local/bin/crun"),
    RuntimeName.RUNC: ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"),
}


@functools.cache
def binary_of(name: RuntimeName) -> str | None:
    """The installed executable for `name`, or None."""
    for path in _LOCATIONS[name]:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name.value)


@functools.cache
def _hidden_cgroup2() -> Path | None:
    """The cgroup2 mount crun must not see: set on hybrid machines only."""
    return linux.hybrid_cgroup2_mount()


@dataclass(frozen=True)
class OciRuntime:
    """One runtime bound to one engine root."""

    name: RuntimeName
    binary: str
    root: Path
    #: The engine root: its rootfs overlays and netns mounts are what a private copy detaches.
    engine_root: Path
    #: The cgroup2 mount hidden from this runtime's processes (crun on hybrid cgroups).
    hides: Path | None = None

    def in_view(
        self, action: Callable[[], _T], *, long_lived: bool = False, keep: Collection[Path] = ()
    ) -> _T:
        """Call `action`, which starts this runtime (or conmon, which execs it), so that the
        processes it starts see the cgroups this runtime accepts.

        With a hidden cgroup2 mount that is a private mount namespace
        (`linux.run_in_private_mounts`, about 0.5 ms). For a `long_lived` process (an
        interactive exec lives as long as its session; conmon avoids this, see
        `create_options`) the engine's
        other rootfs overlays and network namespaces are detached there too: the host's mounts
        are private here, so the host's later unmounts never reach a copy, and a lasting copy
        keeps an overlay's upperdir "in use" (a restarted container would mount over a live
        one) and a removed netns alive. That costs about 40 us per mount, so short calls
        (state, start, kill, delete, probes), whose copies vanish within milliseconds, skip it.
        `keep` is what the process needs (for `create`: the container's rootfs and netns).
        """
        if self.hides is None:
            return action()
        detach = _PINNED_TYPES if long_lived else ()
        kept = {os.path.realpath(path) for path in keep}  # mountinfo shows resolved paths
        under = os.path.realpath(self.engine_root)
        try:
            return linux.run_in_private_mounts(action, self.hides, detach=detach, under=under, keep=kept)
        except linux.PrivateMountsFailed as exc:
            raise RuntimeFailure(f"{self.name}: cannot prepare its mount namespace: {exc}") from exc

    @property
    def takes_seccomp_bpf(self) -> bool:
        """Whether `run.oci.seccomp_bpf_data` replaces compiling `linux.seccomp` (crun only)."""
        return self.name is RuntimeName.CRUN

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    @contextlib.contextmanager
    def create_options(self) -> Iterator[list[str]]:
        """conmon's `-r` and the global options it must put before `create`, valid in the block.

        With a hidden cgroup2 mount, conmon runs `nsenter --mount=<fd> <runtime> ...`: the
        runtime's `create` enters a private namespace made for it (`in_view`, without the
        cgroup2 mount) and held open by the engine until the block ends, while conmon itself
        stays in the engine's namespace. A conmon in a private copy would pin every other
        container's overlay and network namespace for the life of its container unless each copy
        unmounted them all (per create, about 40 us per mount: a cost that grew with the number of
        containers). The runtime's copy vanishes when `create` exits (the container's own
        namespace keeps only its rootfs after pivot_root), so it needs no such cleanup.
        """
        options = ["--runtime-arg", "--root", "--runtime-arg", str(self.root)]
        if self.hides is None:
            yield ["-r", self.binary, *options]
            return
        if not os.access(NSENTER, os.X_OK):
            raise RuntimeFailure(f"{self.name} needs {NSENTER} (util-linux) on a hybrid-cgroup machine")
        view = self.in_view(lambda: os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
        try:
            enter = f"--mount=/proc/{os.getpid()}/fd/{view}"
            yield ["-r", NSENTER, "--runtime-arg", enter, "--runtime-arg", self.binary, *options]
        finally:
            os.close(view)

    def run(self, *args: str, check: bool = True, plain: bool = False) -> subprocess.CompletedProcess[str]:
        """Run `<runtime> --root <root> ARGS`; on failure raise with the runtime's own message.

        `plain`: in the engine's own mount namespace. For calls that set up no cgroup (`state`,
        `start`, `kill`, `delete` of a stopped container) crun does not mind the hybrid layout,
        and a private namespace per call costs a copy of the host's mount table plus a thread,
        serialised on the kernel's namespace lock when many containers start or stop at once.
        """
        command = self.argv(*args)
        if plain or args[0] in _PLAIN_COMMANDS:
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
        else:
            proc = self.in_view(lambda: subprocess.run(command, capture_output=True, text=True, check=False))
        if check and proc.returncode != 0:
            message = proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}"
            raise RuntimeFailure(f"{self.name} {args[0]} failed: {message}")
        return proc

    def holds(self, container_id: str) -> bool:
        """Whether this runtime has state for the container (created and not yet deleted)."""
        return (self.root / container_id).is_dir()

    def version(self) -> str:
        """First line of `--version`, e.g. `crun version 1.8.1`."""
        try:
            out = subprocess.run(
                [self.binary, "--version"], capture_output=True, text=True, check=False, timeout=5
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return f"{self.name} (version unavailable)"
        return out.splitlines()[0].strip() if out.strip() else f"{self.name} (version unavailable)"

    def describe(self) -> str:
        """For `engine status`: the runtime, and how it copes with this machine's cgroups."""
        if self.hides is None:
            return self.version()
        return f"{self.version()} (hybrid cgroups: runs without {self.hides})"


def runtime(name: RuntimeName, paths: EnginePaths | None = None) -> OciRuntime:
    """`name` bound to the engine root at `paths`; RuntimeFailure if it is not installed."""
    binary = binary_of(name)
    if binary is None:
        raise RuntimeFailure(f"the OCI runtime {name} is not installed")
    paths = paths or EnginePaths.from_env()
    hides = _hidden_cgroup2() if name is RuntimeName.CRUN else None
    return OciRuntime(
        name=name, binary=binary, root=paths.run / name.value, hides=hides, engine_root=paths.root
    )


def configured(paths: EnginePaths | None = None, environ: dict[str, str] | None = None) -> OciRuntime:
    """The runtime for new containers: `$STACKUP_OCI_RUNTIME`, else crun if installed, else runc."""
    wanted = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if wanted:
        if wanted not in set(RuntimeName):
            choices = ", ".join(n.value for n in RuntimeName)
            raise UsageError(f"{ENV}={wanted!r}: expected one of {choices}")
        return runtime(RuntimeName(wanted), paths)
    for name in PREFERENCE:
        if binary_of(name) is not None:
            return runtime(name, paths)
    raise RuntimeFailure("no OCI runtime installed: install crun or runc")


def installed(paths: EnginePaths | None = None) -> list[OciRuntime]:
    """Every installed runtime bound to this root (cleanup and re-adoption look at all of them)."""
    return [runtime(name, paths) for name in PREFERENCE if binary_of(name) is not None]


def of_container(container_id: str, paths: EnginePaths | None = None) -> OciRuntime:
    """The runtime holding `container_id`; the configured one when none does (not created yet,
    or already deleted, when every runtime answers "no such container" alike)."""
    default = configured(paths)
    if default.holds(container_id):
        return default
    for other in installed(paths):
        if other.name is not default.name and other.holds(container_id):
            return other
    return default
