"""Lifecycle hooks: Compose's `post_start` and `pre_stop`, run in the container by exec.

Why the engine owns them rather than the CLI or the native runtime adapter: a container is
started by more than `up`. A restart policy restarts it while no CLI runs, and the engine starts
`always` containers when it boots; a `post_start` that seeds a cache or registers the instance
must run after each of those starts, and only the engine sees them all. Likewise every stop
(`stop`, `down`, a recreate, Ctrl-C of an attached `up`) arrives at the engine's stop.

Failure semantics:
  - `post_start` hooks run in order right after the start; the first that fails (non-zero exit,
    time limit, or the container gone) ends the sequence. On a start a user asked for, that
    fails the start with the hook's exit code and output, as Compose fails `up`; the container
    keeps running, as with Compose, so its logs can be read. On an automatic start the failure
    is published (`hook-failed`) and logged, since nobody is there to answer.
  - `pre_stop` hooks run in order before the stop signal; a failure is published but never
    prevents the stop (Compose would abort the stop, which leaves `down` unable to finish).

Time limits: Compose sets none, but a hook stuck forever would hold the container's start or
stop (and its lock) forever. `post_start` gets `POST_START_TIMEOUT_S`; `pre_stop` gets the stop's
grace period (at least `PRE_STOP_MIN_S`), as Kubernetes counts preStop inside the grace period.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.engine.containers import conmon
from stackup.runtime.engine.containers.oci import all_capabilities
from stackup.runtime.wire.models import Hook
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerRecord

log = logging.getLogger("stackupd.hooks")

POST_START_TIMEOUT_S = 600.0
"""Generous: a post_start may load fixtures into a database; it only bounds a wedged hook."""
PRE_STOP_MIN_S = 1.0
"""A stop with a zero grace period (`down -t 0`) still gives pre_stop hooks this long."""
OUTPUT_LIMIT = 4096
"""Bytes of a hook's output kept for the error message and the event."""

Publish = Callable[[ContainerRecord, str, Mapping[str, str]], None]
"""`(record, action, attributes)`: publishes a container event."""


class HookKind(StrEnum):
    POST_START = "post_start"
    PRE_STOP = "pre_stop"


@dataclass(frozen=True, slots=True)
class HookResult:
    """How one hook ended; `exit_code` None means it ran out of time or could not run at all."""

    kind: HookKind
    hook: Hook
    exit_code: int | None
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self, container: str) -> str:
        """`post_start hook ["sh", "-c", "exit 3"] of web-1 failed: exit code 3: <output>`."""
        how = f"exit code {self.exit_code}" if self.exit_code is not None else "did not finish"
        command = " ".join(self.hook.command)
        text = f"{self.kind} hook `{command}` of container {container} failed: {how}"
        output = self.output.strip()
        return f"{text}: {output}" if output else text


def run_hook(
    paths: EnginePaths, container_id: str, kind: HookKind, hook: Hook, timeout_s: float
) -> HookResult:
    """Run one hook to completion (or kill it after `timeout_s`); stdout and stderr interleaved."""
    caps = all_capabilities() if hook.privileged else ()
    try:
        command = conmon.exec_command(
            container_id, hook.command, kind=kind.value, env=hook.env, user=hook.user, cwd=hook.cwd,
            capabilities=caps, paths=paths,
        )  # fmt: skip
    except (RuntimeFailure, NotFound) as exc:
        return HookResult(kind, hook, None, str(exc))
    with tempfile.TemporaryFile() as out:
        try:
            proc = command.popen(stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            try:
                code: int | None = proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                conmon.kill_exec(command.pid_file, proc)
                code = None
        except RuntimeFailure as exc:
            return HookResult(kind, hook, None, str(exc))
        finally:
            command.cleanup()
        out.seek(0)
        output = out.read(OUTPUT_LIMIT).decode(errors="replace")
    if code is None:
        output = f"{output}\n(killed after {timeout_s:g}s)".lstrip()
    return HookResult(kind, hook, code, output)


class HookRunner:
    """Runs a container's recorded hooks and publishes how each ended."""

    def __init__(self, paths: EnginePaths, publish: Publish) -> None:
        self._paths = paths
        self._publish = publish

    def post_start(self, record: ContainerRecord) -> HookResult | None:
        """Run the `post_start` hooks in order; the first failure, or None when all succeeded."""
        return self._run(record, HookKind.POST_START, record.hooks.post_start, POST_START_TIMEOUT_S)

    def post_start_or_raise(self, record: ContainerRecord) -> None:
        """`post_start` for a start a user asked for: a failing hook fails the start."""
        failed = self.post_start(record)
        if failed is not None:
            raise RuntimeFailure(failed.describe(record.name))

    def pre_stop(self, record: ContainerRecord, grace_s: float) -> HookResult | None:
        """Run the `pre_stop` hooks in order within the grace period; failures only reported."""
        return self._run(record, HookKind.PRE_STOP, record.hooks.pre_stop, max(grace_s, PRE_STOP_MIN_S))

    def _run(
        self, record: ContainerRecord, kind: HookKind, hooks: tuple[Hook, ...], timeout_s: float
    ) -> HookResult | None:
        for hook in hooks:
            result = run_hook(self._paths, record.id, kind, hook, timeout_s)
            attributes = {"hook": kind.value, "exitCode": str(result.exit_code)}
            if result.ok:
                self._publish(record, "hook", attributes)
                continue
            log.warning("%s", result.describe(record.name))
            self._publish(record, "hook-failed", {**attributes, "output": result.output.strip()})
            return result
        return None
