"""RUN: a short-lived container of the engine over the layers so far, its upper dir the layer.

The container gets the same confinement as a service container (`oci.oci_config`: Docker's 14
capabilities, masked /proc paths, the default seccomp profile, the engine's cgroup parent) and is
run in the foreground with `<runtime> run`, its stdout and stderr read line by line as the step's
output. No conmon: nothing outlives the step, and the engine reaps it.

Network: builds share the host's network namespace (Docker's `--network=host` for builds), so a
RUN reaches exactly what the host reaches (`apt-get` against the host's configured mirror, with
the host's resolv.conf and hosts); `RUN --network=none` or a request with `network: none` gets a
private namespace with only loopback.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from stackup.build.dockerfile.instructions import NetworkMode as RunNetwork
from stackup.build.dockerfile.instructions import Run
from stackup.build.graph import Step
from stackup.build.runscript import run_script
from stackup.errors import RuntimeFailure
from stackup.runtime.engine.builder import mounts as run_mounts
from stackup.runtime.engine.builder.mounts import Workspace
from stackup.runtime.engine.containers import ociruntime
from stackup.runtime.engine.containers.config import (
    ContainerConfig,
    NetworkMode,
    default_cgroup_parent,
    rootfs_path,
)
from stackup.runtime.engine.containers.config import Mount as OciMount
from stackup.runtime.engine.containers.conmon import RuntimeDirs
from stackup.runtime.engine.containers.oci import write_bundle
from stackup.runtime.engine.containers.seccomp_bpf import cache_for
from stackup.runtime.wire.models import HostEntry, MountKind
from stackup.runtime.wire.paths import EnginePaths

TAIL_LINES = 20


class StepFailed(RuntimeFailure):
    """A step failed; `tail` holds the last lines of its output."""

    def __init__(self, message: str, tail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.tail = tail


@dataclass(frozen=True)
class RunOptions:
    network: str | None = None
    extra_hosts: tuple[tuple[str, str], ...] = ()
    shm_size: int | None = None


def run_step(
    paths: EnginePaths,
    ws: Workspace,
    step: Step,
    prepared: run_mounts.RunMounts,
    *,
    options: RunOptions,
    on_line: Callable[[str], None],
) -> None:
    """Run the step's command in `ws` and wait; raise `StepFailed` on a non-zero exit."""
    instr = step.instruction
    assert isinstance(instr, Run)
    script = run_script(instr, step.config.shell)
    extra: list[OciMount] = []
    if script.files:
        pipes = ws.dir / "pipes"
        pipes.mkdir(exist_ok=True)
        for target, data in script.files:
            host = pipes / PurePosixPath(target).name
            host.write_text(data)
            os.chmod(host, 0o755)
            extra.append(
                OciMount(kind=MountKind.BIND, target=PurePosixPath(target), source=host, read_only=True)
            )
    none = instr.network is RunNetwork.NONE or options.network == "none"
    workdir = step.config.workdir or "/"
    rootfs_path(ws.rootfs, workdir).mkdir(parents=True, exist_ok=True)
    container_id = "build-" + secrets.token_hex(12)
    env = step.run_env() | prepared.env
    config = ContainerConfig(
        id=container_id,
        name=f"build-{container_id[6:18]}",
        rootfs=ws.rootfs,
        args=script.argv,
        env=env,
        cwd=PurePosixPath(workdir),
        user=step.config.user,
        mounts=(*prepared.mounts, *extra),
        network_mode=NetworkMode.NONE if none else NetworkMode.HOST,
        shm_size=options.shm_size,
        extra_hosts=tuple(HostEntry(hostname=h, address=a) for h, a in options.extra_hosts),
        cgroup_parent=default_cgroup_parent(paths.root),
    )
    _run(paths, ws, config, prepared.keep, on_line)


def _run(
    paths: EnginePaths,
    ws: Workspace,
    config: ContainerConfig,
    keep: list[Path],
    on_line: Callable[[str], None],
) -> None:
    rt = ociruntime.configured(paths)
    rt.root.mkdir(parents=True, exist_ok=True)
    dirs = RuntimeDirs.of(paths)
    write_bundle(config, ws.dir, seccomp_bpf=cache_for(dirs.seccomp) if rt.takes_seccomp_bpf else None)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    argv = rt.argv("run", "--bundle", str(ws.dir), config.id)
    try:
        proc = rt.in_view(
            lambda: subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
                close_fds=True,
            ),
            long_lived=True,
            keep=[ws.rootfs, *keep],
        )
    except OSError as exc:
        raise StepFailed(f"cannot start {rt.name}: {exc}") from exc
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tail.append(line)
            on_line(line)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        rt.run("delete", "--force", config.id, check=False)
    if code != 0:
        raise StepFailed(f"did not complete successfully: exit code {code}", tuple(tail))
