"""A stack brought up for tests: the handle a test receives, its set-up and its removal.

Every environment gets a project name of its own (`<base>-<worker>-<token>`), so two pytest
workers, or two runs on one machine, never share containers, networks or volumes. Ports are not
rewritten: a stack published on `127.0.0.1::8000` gets an ephemeral host port per project, which
`url()` resolves; a pinned host port (`8080:8000`) is the stack file's choice, and a second
project asking for it fails with the engine's error (the port is taken).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stackup.errors import StackFailed, StackupError, UsageError
from stackup.runtime import labels as lbl
from stackup.runtime.base import Health
from stackup.testing import signals

if TYPE_CHECKING:
    from stackup.api.stack import Stack
    from stackup.runtime.base import ContainerInfo, ExecOutput

DEFAULT_WAIT_TIMEOUT_S = 120.0
"""How long set-up waits for every service to reach its target (running, healthy, completed)."""

_NOT_IN_NAME = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class StackSpec:
    """What a fixture brings up: its stack files and the options it was declared with."""

    files: tuple[Path, ...]
    services: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    project_name: str | None = None
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S
    runtime: str | None = None

    @property
    def base_name(self) -> str:
        """The stable part of the project name: the one given, else the stack file's directory."""
        raw = self.project_name or (self.files[0].parent.name if self.files else "") or "stackup"
        return _NOT_IN_NAME.sub("", raw.lower()).lstrip("_-") or "stackup"


def resolve_files(files: str | Path | Sequence[str | Path], base: Path) -> tuple[Path, ...]:
    """Stack files as absolute paths, relative ones against `base` (the declaring module's
    directory), so a fixture means the same file whatever the working directory of the run."""
    listed = [files] if isinstance(files, str | Path) else list(files)
    if not listed:
        raise UsageError("stack_fixture: give at least one stack file")
    return tuple(p if p.is_absolute() else (base / p) for p in map(Path, listed))


def unique_name(base: str, worker: str | None = None) -> str:
    """`<base>-<worker>-<token>`: the worker (xdist's `gw0`, else `main`) tells whose it is, the
    token keeps two runs on one machine apart."""
    return f"{base}-{worker or 'main'}-{secrets.token_hex(3)}"


def worker_id() -> str | None:
    """pytest-xdist's worker id (`gw0`, ...) when running under it."""
    return os.environ.get("PYTEST_XDIST_WORKER") or None


class StackEnvironment:
    """A running stack as a test sees it: where its services answer, and a way in.

    `url("web", 8000)` and `port(...)` resolve published ports (ephemeral ones included),
    `exec` runs a command in a service, `logs` reads a service's output. The full Python API
    (`stackup.api.Stack`) is `stack`, for anything else.
    """

    def __init__(self, spec: StackSpec, name: str) -> None:
        self.spec = spec
        self.name = name
        self._stack: Stack | None = None

    def __repr__(self) -> str:
        return f"StackEnvironment({self.name!r}, files={[str(f) for f in self.spec.files]})"

    @property
    def stack(self) -> Stack:
        if self._stack is None:
            raise UsageError(f"project {self.name} is not up (start() first)")
        return self._stack

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Load the stack under this project's name and bring it up, waiting for every target.

        Raises `StackFailed` whose message carries each culprit's probes and log tail. The
        caller removes (or keeps) what was created, also when this is interrupted.
        """
        from stackup.api.stack import Stack

        missing = [str(f) for f in self.spec.files if not f.is_file()]
        if missing:
            raise UsageError(f"stack file not found: {', '.join(missing)}")
        environ = {**os.environ, **dict(self.spec.env)}
        self._stack = Stack.load(
            self.spec.files, project_name=self.name, profiles=self.spec.profiles, environ=environ,
            runtime=self.spec.runtime, working_dir=self.spec.files[0].parent,
        )
        try:
            self._stack.up(self.spec.services, wait=True, wait_timeout=self.spec.wait_timeout)
        except StackFailed as exc:
            raise StackFailed(f"{self.name}: {exc.message}\n{describe(exc)}", exc.diagnoses) from None

    def remove(self) -> None:
        """`down -v`: containers, networks and named volumes, with SIGINT/SIGTERM held back so
        an impatient second Ctrl-C cannot leave half a stack behind."""
        if self._stack is None:
            self._remove_by_name()
            return
        with signals.deferred():
            try:
                self._stack.down(volumes=True)
            finally:
                self._stack.close()
        self._stack = None

    def _remove_by_name(self) -> None:
        """Removal when loading failed or was interrupted before `start` kept its handle: the
        project may still have containers if `up` got that far."""
        from stackup.api.stack import Stack

        with signals.deferred(), Stack.by_name(self.name, runtime=self.spec.runtime) as stack:
            stack.down(volumes=True)

    def detach(self) -> None:
        """Leave the project running (`--stackup-keep`) and drop the connection to the engine."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    # -- what a test uses ------------------------------------------------------------------

    def url(self, service: str, port: int, *, path: str = "/", scheme: str = "http", index: int = 1) -> str:
        """`http://127.0.0.1:<host port>/` for the host port `port` of `service` is published on."""
        return self.stack.url(service, port, scheme=scheme, path=path, index=index)

    def port(self, service: str, port: int, *, protocol: str = "tcp", index: int = 1) -> tuple[str, int]:
        """`(host address, host port)` of a published container port."""
        return self.stack.port(service, port, protocol=protocol, index=index)

    def exec(
        self, service: str, command: Sequence[str], *, index: int = 1, user: str | None = None,
        workdir: str | None = None, env: Mapping[str, str] | None = None,
    ) -> ExecOutput:
        """Run `command` in a running service to completion: exit code, stdout, stderr."""
        return self.stack.exec(service, command, index=index, user=user, workdir=workdir, env=env)

    def logs(self, service: str, *, tail: int | None = None, index: int = 1) -> str:
        """What `service` wrote so far (stdout and stderr interleaved), one line per line."""
        return "\n".join(e.text for e in self.stack.logs(service, tail=tail, index=index))

    def ps(self) -> list[ContainerInfo]:
        return self.stack.ps()

    # -- reports ---------------------------------------------------------------------------

    def log_report(self, lines: int) -> str:
        """The last `lines` of every container of the project (jobs that exited included), for a
        failing test's report. Never raises: a report is no place for a second failure."""
        try:
            containers = self.stack.ps()
            parts: list[str] = []
            for info in containers:
                service = info.labels.get(lbl.SERVICE, info.name)
                entries = list(self.stack.backend.logs(info.id, tail=lines))
                health = f" ({info.health.value})" if info.health is not Health.NONE else ""
                state = f"{info.state.value}{health}"
                parts.append(f"--- {service} ({info.name}, {state}): last {len(entries)} lines ---")
                parts += [f"{service} | {e.text}" for e in entries]
            return "\n".join(parts) if parts else f"project {self.name} has no containers"
        except StackupError as exc:
            return f"could not read the logs of project {self.name}: {exc}"

    def how_to_reach(self) -> list[str]:
        """For `--stackup-keep`: the project, its published ports, and the command that removes it."""
        root = os.environ.get("STACKUP_ROOT")
        prefix = f"STACKUP_ROOT={root} " if root else ""
        runtime = f" --runtime {self.spec.runtime}" if self.spec.runtime else ""
        lines = [f"project {self.name} ({', '.join(str(f) for f in self.spec.files)})"]
        try:
            for info in self.stack.ps():
                for b in info.ports:
                    if b.host_port:
                        host = b.host_ip if b.host_ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
                        lines.append(f"  {info.labels.get(lbl.SERVICE, info.name)} "
                                     f"{b.container_port}/{b.protocol} -> {host}:{b.host_port}")
        except StackupError as exc:
            lines.append(f"  (could not list its ports: {exc})")
        lines.append(f"  inspect: {prefix}stackup{runtime} -p {self.name} ps")
        lines.append(f"  remove:  {prefix}stackup{runtime} -p {self.name} down -v")
        return lines


def describe(exc: StackFailed) -> str:
    """A `StackFailed`'s diagnoses as text: per culprit the chain, the last probes, the log tail."""
    from stackup.api.readiness import Diagnosis

    out: list[str] = []
    for found in exc.diagnoses:
        if not isinstance(found, Diagnosis):
            continue
        out.append(found.headline)
        for probe in found.probes:
            end = probe.end.isoformat() if probe.end else ""
            out.append(f"  probe {end} exit {probe.exit_code}: {' '.join(probe.output.split())}")
        out += [f"  {found.container} | {line}" for line in found.log_tail]
    return "\n".join(out)
