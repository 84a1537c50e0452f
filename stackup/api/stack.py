"""`Stack`: one project driven through the four stages, the seam every front end calls.

    stack = Stack.load(["compose.yaml"], project_name="demo")
    print(stack.plan())                  # what `up` would do, and why
    stack.up(wait=True)                  # raises StackFailed (with diagnoses) if it cannot
    print(stack.exec("web", ["cat", "/etc/hostname"]).stdout)
    stack.down(volumes=True)

The CLI parses flags, calls these methods and prints; the pytest plugin, `watch` and the deploy
targets call the same methods. Progress goes to a `planner.reporter.Reporter`, never to stdout.
The runtime is chosen once (`backends.open_backend`), so the same code drives stackup's own
engine or an existing Docker/Podman daemon.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, assert_never

from stackup.api import pulling, readiness
from stackup.api.backends import open_backend
from stackup.errors import NotFound, RuntimeFailure, StackFailed, UsageError
from stackup.runtime import labels as lbl
from stackup.runtime.base import (
    Backend,
    BuildSpec,
    ContainerImages,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    ExecOutput,
    ExecSpec,
    ImageInfo,
    LogEntry,
    ProcessStream,
    RuntimeEvent,
    TransferProgress,
)

if TYPE_CHECKING:
    from stackup.api import deploying
    from stackup.dev.report import WatchEvent
    from stackup.planner.execute import Outcome
    from stackup.planner.observed import Observed
    from stackup.planner.options import ReconcileOptions
    from stackup.planner.plan import Plan
    from stackup.planner.reporter import Reporter
    from stackup.spec.loader import LoadedProject
    from stackup.spec.models import Project
    from stackup.spec.options import LoadOptions

LOCK_TIMEOUT_ENV = "STACKUP_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 600.0
WAIT_POLL_S = 0.05
"""How often `up` polls a dependency's health or exit while it waits on a condition."""


@dataclass(frozen=True, slots=True)
class UpResult:
    """What `up` did: the plan it executed and how each operation went."""

    plan: Plan
    outcome: Outcome

    @property
    def changed(self) -> bool:
        return self.plan.has_changes


@dataclass(frozen=True, slots=True)
class RunResult:
    """A one-off container: its name and, unless detached, its exit code."""

    container: str
    exit_code: int | None = None


class ContainerAction(StrEnum):
    """What `Stack.act` does to each container."""

    STOP = "stop"
    START = "start"
    RESTART = "restart"
    KILL = "kill"
    RM = "rm"


class Stack:
    """A project on a backend: loaded from stack files (`load`) or known by name (`by_name`).

    Commands on a running project (`down`, `ps`, `logs`, `exec`, ...) need only its name, so
    they still work after the stack file was broken; `plan`/`up`/`run` need the loaded model.
    """

    def __init__(
        self,
        backend: Backend,
        name: str,
        loaded: LoadedProject | None = None,
        *,
        parallel: int | None = None,
        owns_backend: bool = True,
    ) -> None:
        self.backend = backend
        self.name = name
        self.loaded = loaded
        # A daemon's backend wants more in flight. Read from the class: a lazily opened backend
        # (deploy's) must not be opened, and its engine started, just to be asked.
        chosen: int | None = getattr(type(backend), "default_parallel", None)
        self.parallel = parallel if parallel is not None else chosen
        self._owns_backend = owns_backend
        self.load_options: LoadOptions | None = None
        """How `loaded` was loaded (`reload` repeats it; `watch` does on a stack-file change)."""

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        files: Sequence[str | Path] = (),
        *,
        project_name: str | None = None,
        profiles: Sequence[str] = (),
        env_files: Sequence[str | Path] = (),
        project_directory: str | Path | None = None,
        services: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
        working_dir: str | Path | None = None,
        runtime: str | None = None,
        backend: Backend | None = None,
        parallel: int | None = None,
    ) -> Stack:
        """Load and validate the stack as Compose would (raises `SpecError`, located)."""
        from stackup.spec.options import LoadOptions

        env = dict(os.environ if environ is None else environ)
        options = LoadOptions(
            files=[Path(f) for f in files],
            project_directory=Path(project_directory) if project_directory else None,
            project_name=project_name,
            env_files=[Path(f) for f in env_files],
            profiles=list(profiles),
            services=list(services),
            environ=env,
            working_dir=Path(working_dir) if working_dir else Path.cwd(),
        )
        return cls.from_options(options, runtime=runtime, backend=backend, parallel=parallel)

    @classmethod
    def from_options(
        cls,
        options: LoadOptions,
        *,
        runtime: str | None = None,
        backend: Backend | None = None,
        parallel: int | None = None,
    ) -> Stack:
        from stackup.spec.loader import load

        loaded = load(options)
        chosen = backend or open_backend(runtime, options.environ)
        stack = cls(chosen, loaded.project.name, loaded, parallel=parallel, owns_backend=backend is None)
        stack.load_options = options
        return stack

    @classmethod
    def by_name(
        cls, name: str, *, runtime: str | None = None, backend: Backend | None = None,
        parallel: int | None = None,
    ) -> Stack:
        """A project that is (or was) running, without its stack file."""
        chosen = backend or open_backend(runtime)
        return cls(chosen, name, None, parallel=parallel, owns_backend=backend is None)

    def close(self) -> None:
        if self._owns_backend:
            self.backend.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def project(self) -> Project:
        if self.loaded is None:
            raise UsageError(f"project {self.name}: this needs the stack file (Stack.load)")
        return self.loaded.project

    @property
    def warnings(self) -> list[str]:
        return list(self.loaded.warnings) if self.loaded else []

    # -- plan and apply --------------------------------------------------------------------

    def observe(self, *, images: bool = True) -> Observed:
        from stackup.planner.observed import observe

        return observe(self.backend, self.name, images=images)

    def reconcile_options(
        self,
        services: Sequence[str] = (),
        *,
        force_recreate: bool = False,
        no_recreate: bool = False,
        always_recreate_deps: bool = False,
        no_deps: bool = False,
        remove_orphans: bool = False,
        scale: Mapping[str, int] | None = None,
        build: bool = False,
        no_build: bool = False,
        pull: str | None = None,
        refreshed: frozenset[str] = frozenset(),
    ) -> ReconcileOptions:
        """The planner's options for this load (file contents for the hash, disabled services)."""
        from stackup.planner.options import ReconcileOptions, recreate_policies

        loaded = self.loaded
        if loaded is None:
            raise UsageError(f"project {self.name}: planning needs the stack file (Stack.load)")
        recreate, recreate_deps = recreate_policies(
            force_recreate=force_recreate, no_recreate=no_recreate, always_recreate_deps=always_recreate_deps
        )
        return ReconcileOptions(
            services=tuple(services),
            no_deps=no_deps,
            recreate=recreate,
            recreate_deps=recreate_deps,
            remove_orphans=remove_orphans,
            build=build,
            no_build=no_build,
            scale=dict(scale or {}),
            referenced_files=dict(loaded.referenced_files),
            disabled_services=frozenset(loaded.disabled_services),
            working_dir=str(loaded.files[0].parent) if loaded.files else "",
            config_files=tuple(str(f) for f in loaded.files),
            pull=pull,
            refreshed=refreshed,
            now=datetime.now(UTC),
        )

    def plan(self, services: Sequence[str] = (), *, observed: Observed | None = None,
             **options: object) -> Plan:
        """What `up` would do and why (`str(plan)` is `stackup plan`'s output). Options as `up`;
        `observed` reuses a snapshot just taken."""
        from stackup.planner.reconcile import reconcile

        reconcile_options = self.reconcile_options(services, **options)  # type: ignore[arg-type]
        return reconcile(self.project, observed or self.observe(), reconcile_options)

    def up(
        self,
        services: Sequence[str] = (),
        *,
        wait: bool = False,
        wait_timeout: float = 300.0,
        force_recreate: bool = False,
        no_recreate: bool = False,
        always_recreate_deps: bool = False,
        no_deps: bool = False,
        remove_orphans: bool = False,
        scale: Mapping[str, int] | None = None,
        pull: str | None = None,
        reporter: Reporter | None = None,
        build: bool = False,
        no_build: bool = False,
    ) -> UpResult:
        """Make the backend match the stack along the dependency graph, as parallel as it allows.

        With `wait`, return only once every service in scope reached its target (running,
        healthy, completed). Raises `StackFailed` with a `Diagnosis` per culprit otherwise.
        `build` (`up --build`) builds the services' images first, as Compose does, so only the
        containers whose image really changed are recreated; `no_build` never builds.
        `pull` (`always`, `missing`, `never`) overrides every service's `pull_policy`.
        """
        from stackup.planner.conditions import WaitPolicy
        from stackup.planner.execute import execute

        started = time.monotonic()
        names = tuple(services)
        if build and no_build:
            raise UsageError("--build and --no-build cannot be combined")
        if build:
            self.build(self._in_scope(names, no_deps), progress=_progress_of(reporter))
        knobs: dict[str, object] = dict(
            force_recreate=force_recreate, no_recreate=no_recreate, always_recreate_deps=always_recreate_deps,
            no_deps=no_deps, remove_orphans=remove_orphans, scale=scale, pull=pull, no_build=no_build,
        )
        with self.locked("up", reporter):  # observed and applied by one client at a time
            observed = self.observe()
            plan = self.plan(names, observed=observed, **knobs)
            refresh = pulling.refresh_ops(plan, observed)
            if refresh:  # pull what is due first: containers are then recreated only if the image changed
                refreshed = pulling.run_refresh(refresh, self.name, self.backend, reporter, self.parallel)
                if not refreshed.ok:
                    raise self._failure(refreshed)
                plan = self.plan(names, refreshed=frozenset(op.name for op in refresh), **knobs)  # type: ignore[arg-type]
            outcome = execute(
                plan, self.backend, reporter, parallel=self.parallel,
                wait=WaitPolicy(interval_s=WAIT_POLL_S, timeout_s=wait_timeout),
            )
        if not outcome.ok:
            raise self._failure(outcome)
        if wait:
            readiness.wait_ready(
                self.backend, self.project, names, no_deps=no_deps, timeout_s=wait_timeout, started=started
            )
        return UpResult(plan, outcome)

    # -- builds ---------------------------------------------------------------------------------

    def _in_scope(self, services: Sequence[str], no_deps: bool) -> tuple[str, ...]:
        """The services `up SERVICES` touches: these and (unless `no_deps`) their dependencies."""
        if not services:
            return tuple(sorted(self.project.services))
        seen: set[str] = set()
        todo = list(services)
        while todo:
            name = todo.pop()
            if name in seen or name not in self.project.services:
                continue
            seen.add(name)
            if not no_deps:
                todo.extend(self.project.services[name].depends_on)
        return tuple(sorted(seen))

    def build_specs(
        self,
        services: Sequence[str] = (),
        *,
        no_cache: bool = False,
        pull: bool = False,
        build_args: Mapping[str, str] | None = None,
    ) -> dict[str, BuildSpec]:
        """What `build` would send the runtime: service -> `BuildSpec`, for `services` (default:
        every service with a `build` section), in build order. Services that share an image ref
        share one spec (built once). The CLI's no-op shortcut records these (`cli/buildfast.py`)."""
        from stackup.planner.resources import build_spec
        from stackup.planner.specs import image_ref

        names = tuple(services) or tuple(n for n, s in sorted(self.project.services.items()) if s.build)
        specs: dict[str, BuildSpec] = {}
        by_ref: dict[str, BuildSpec] = {}
        for name in names:
            service = self.project.services.get(name)
            if service is None:
                raise UsageError(f"no such service: {name}")
            if service.build is None:
                continue
            ref = image_ref(self.project, name, service)
            if ref not in by_ref:
                environment = self.loaded.environment if self.loaded else None
                spec = build_spec(self.project, ref, service, environment)
                spec = dataclasses.replace(spec, no_cache=spec.no_cache or no_cache, pull=spec.pull or pull)
                by_ref[ref] = _with_args(spec, build_args)
            specs[name] = by_ref[ref]
        return specs

    def build(
        self,
        services: Sequence[str] = (),
        *,
        no_cache: bool = False,
        pull: bool = False,
        build_args: Mapping[str, str] | None = None,
        progress: Callable[[str, str], None] | None = None,
    ) -> dict[str, str]:
        """Build the images of `services` (default: every service with a `build` section), as
        `stackup build` does; returns service -> image id. `progress(service, line)` receives each
        build's steps and output. A failure raises `BuildFailed` (step, Dockerfile line, output
        tail) or `DockerfileError`; the old image keeps its tag and containers are not touched."""
        built: dict[str, str] = {}
        by_ref: dict[str, str] = {}
        specs = self.build_specs(services, no_cache=no_cache, pull=pull, build_args=build_args)
        for name, spec in specs.items():
            if spec.tag in by_ref:
                built[name] = by_ref[spec.tag]
                continue
            line_sink = (lambda line, n=name: progress(n, line)) if progress is not None else None
            built[name] = by_ref[spec.tag] = self.backend.build_image(spec, line_sink).id
        return built

    def _failure(self, outcome: Outcome) -> StackFailed:
        """Every failure and what it blocked, with the culprits' probes and log tails: the cause is
        in the failed service or at the root of a blocked chain, not in the dependent skipped."""
        lines = [str(e) for _, e in sorted(outcome.failed.items())]
        lines += [str(e) for _, e in sorted(outcome.skipped.items())]
        culprits = {op.split(":", 1)[-1].rsplit("-", 1)[0] for op in outcome.failed}
        culprits |= {e.chain[-1] for e in outcome.skipped.values() if e.chain}
        diagnoses = tuple(
            readiness.diagnose(self.backend, self.project, info, "failed")
            for info in readiness.service_containers(self.backend, self.name)
            if info.labels.get(lbl.SERVICE) in culprits
        )
        return StackFailed("\n".join(dict.fromkeys(lines)), diagnoses)

    def down(
        self, *, volumes: bool = False, timeout: float | None = None, services: Sequence[str] = (),
        reporter: Reporter | None = None,
    ) -> None:
        """Stop and remove the project's containers (dependents first), networks, and with
        `volumes` its named volumes. Orphans go too: `down` leaves nothing of the project."""
        from stackup.planner.execute import execute
        from stackup.planner.teardown import DownOptions, plan_down

        with self.locked("down", reporter), self._stop_timeout(timeout):
            options = DownOptions(volumes=volumes, services=tuple(services))
            plan = plan_down(self.observe(images=False), options)
            outcome = execute(plan, self.backend, reporter, parallel=self.parallel)
        outcome.raise_for_failures()

    # -- the project lock (one `up`/`down` of a project at a time) ---------------------------

    lock_timeout_s: float | None = None
    """How long `up`/`down` wait for another client's `up`/`down` of the same project; None:
    `STACKUP_LOCK_TIMEOUT` (seconds) or 600."""

    def locked(
        self, action: str, reporter: Reporter | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the project's lock (where the backend has one: the native engine's, released when
        this process ends however it ends); tells `reporter` whom it waits for."""
        from stackup.runtime.base import ProjectLocking

        if not isinstance(self.backend, ProjectLocking):
            return contextlib.nullcontext()
        timeout = self.lock_timeout_s
        if timeout is None:
            timeout = float(os.environ.get(LOCK_TIMEOUT_ENV, "") or DEFAULT_LOCK_TIMEOUT_S)

        def waiting(holder: str) -> None:
            if reporter is not None:
                reporter.warning(f"project {self.name} is busy ({holder}): waiting for it to finish")

        return self.backend.project_lock(
            self.name, holder=f"{action}, pid {os.getpid()}", timeout_s=timeout, on_wait=waiting
        )

    def _stop_timeout(self, timeout: float | None) -> _StopTimeout:
        return _StopTimeout(self.backend, timeout)

    # -- containers ------------------------------------------------------------------------

    def ps(
        self, services: Sequence[str] = (), *, all: bool = True, oneoff: bool = False
    ) -> list[ContainerInfo]:
        """The project's containers (running only unless `all`), sorted by name."""
        wanted = set(services)
        found = [
            c for c in self.backend.list_containers(self.name)
            if (oneoff or c.labels.get(lbl.ONEOFF) != lbl.TRUE)
            and (not wanted or c.labels.get(lbl.SERVICE, "") in wanted)
            and (all or c.state is ContainerState.RUNNING)
        ]
        return sorted(found, key=lambda c: c.name)

    def container(self, service: str, index: int = 1) -> ContainerInfo:
        """Replica `index` (1-based) of `service`."""
        for info in self.ps([service]):
            if info.labels.get(lbl.CONTAINER_NUMBER) == str(index):
                return info
        raise NotFound(f"service {service} has no container number {index} in project {self.name}")

    def logs(
        self, service: str, *, index: int = 1, follow: bool = False, tail: int | None = None,
        since: datetime | None = None,
    ) -> Iterator[LogEntry]:
        return self.backend.logs(self.container(service, index).id, follow=follow, tail=tail, since=since)

    def exec(
        self, service: str, command: Sequence[str], *, index: int = 1, user: str | None = None,
        workdir: str | None = None, env: Mapping[str, str] | None = None, privileged: bool = False,
    ) -> ExecOutput:
        """Run `command` in a running replica to completion; its exit code and output."""
        spec = ExecSpec(tuple(command), user=user, working_dir=workdir, environment=dict(env or {}),
                        privileged=privileged)
        return self.backend.exec(self.container(service, index).id, spec)

    def exec_stream(self, service: str, spec: ExecSpec, *, index: int = 1) -> ProcessStream:
        """`exec -it`: a live connection (TTY and stdin as `spec` says)."""
        return self.backend.exec_stream(self.container(service, index).id, spec)

    def port(
        self, service: str, private_port: int, *, protocol: str = "tcp", index: int = 1
    ) -> tuple[str, int]:
        """The host address and port `private_port` of a replica is published on."""
        info = self.container(service, index)
        for binding in info.ports:
            if binding.container_port == private_port and binding.protocol == protocol:
                host = binding.host_ip if binding.host_ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
                return host, binding.host_port
        raise NotFound(f"{info.name}: port {private_port}/{protocol} is not published")

    def url(
        self, service: str, private_port: int, *, scheme: str = "http", path: str = "/", index: int = 1
    ) -> str:
        """`http://127.0.0.1:32768/` for a published port: what a test hands its HTTP client."""
        host, port = self.port(service, private_port, index=index)
        return f"{scheme}://{host}:{port}{path}"

    def events(self, *, follow: bool = True) -> Iterator[RuntimeEvent]:
        return self.backend.events(project=self.name, follow=follow)

    def act(
        self,
        containers: Sequence[ContainerInfo],
        action: ContainerAction,
        *,
        timeout: float | None = None,
        signal: str = "SIGKILL",
        on_done: Callable[[ContainerInfo], None] | None = None,
    ) -> list[ContainerInfo]:
        """Apply one lifecycle action to chosen containers in parallel (the CLI's stop/start/...
        choose them with their own filters); `on_done` hears about each as it finishes."""
        from concurrent.futures import ThreadPoolExecutor

        backend = self.backend

        def one(info: ContainerInfo) -> None:
            match action:
                case ContainerAction.STOP:
                    backend.stop_container(info.id, timeout)
                case ContainerAction.START:
                    backend.start_container(info.id)
                case ContainerAction.RESTART:
                    backend.restart_container(info.id, timeout)
                case ContainerAction.KILL:
                    backend.kill_container(info.id, signal)
                case ContainerAction.RM:
                    backend.remove_container(info.id)
                case _:
                    assert_never(action)
            if on_done is not None:
                on_done(info)

        targets = list(containers)
        if targets:
            with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
                list(pool.map(one, targets))
        return targets

    def stop(self, services: Sequence[str] = (), *, timeout: float | None = None) -> list[ContainerInfo]:
        return self.act(self.ps(services), ContainerAction.STOP, timeout=timeout)

    def start(self, services: Sequence[str] = ()) -> list[ContainerInfo]:
        return self.act(self.ps(services), ContainerAction.START)

    def restart(self, services: Sequence[str] = (), *, timeout: float | None = None) -> list[ContainerInfo]:
        return self.act(self.ps(services), ContainerAction.RESTART, timeout=timeout)

    def kill(self, services: Sequence[str] = (), *, signal: str = "SIGKILL") -> list[ContainerInfo]:
        return self.act(self.ps(services), ContainerAction.KILL, signal=signal)

    def rm(self, services: Sequence[str] = (), *, stopped_only: bool = True) -> list[ContainerInfo]:
        """Remove stopped replicas (`stopped_only=False`: running ones too)."""
        targets = [c for c in self.ps(services) if not stopped_only or c.state is not ContainerState.RUNNING]
        for info in targets:
            self.backend.remove_container(info.id)
        return targets

    def wait(self, services: Sequence[str] = ()) -> dict[str, int]:
        """Block until the replicas exit; their exit codes by container name."""
        return {c.name: self.backend.wait_container(c.id) for c in self.ps(services)}

    def copy_to(self, service: str, path: str, archive: IO[bytes], *, index: int = 1) -> None:
        self.backend.copy_to(self.container(service, index).id, path, archive)

    def copy_from(self, service: str, path: str, *, index: int = 1) -> Iterator[bytes]:
        return self.backend.copy_from(self.container(service, index).id, path)

    def wait_ready(self, services: Sequence[str] = (), *, timeout: float = 300.0) -> None:
        readiness.wait_ready(self.backend, self.project, tuple(services), timeout_s=timeout)

    # -- container images (commit, export) -------------------------------------------------

    def _container_images(self) -> ContainerImages:
        if not isinstance(self.backend, ContainerImages):
            raise UsageError(f"the {self.backend.name} runtime cannot commit or export containers")
        return self.backend

    def commit(self, service: str, ref: str | None = None, *, index: int = 1) -> ImageInfo:
        """Replica `index`'s changes as a new image on top of its own, named `ref` (as `docker commit`)."""
        return self._container_images().commit_container(self.container(service, index).id, ref)

    def export(self, service: str, *, index: int = 1) -> Iterator[bytes]:
        """Replica `index`'s root filesystem (volumes excluded) as a tar stream (as `docker export`)."""
        return self._container_images().export_container(self.container(service, index).id)

    # -- registry: pull and push -----------------------------------------------------------

    def pull(
        self, services: Sequence[str] = (), *, include_deps: bool = False, ignore_failures: bool = False,
        progress: TransferProgress | None = None,
    ) -> list[pulling.Transfer]:
        """Pull the services' images in parallel, as `docker compose pull` chooses them (see
        `api.pulling`); raises on the first failure unless `ignore_failures`."""
        return pulling.pull_services(self.backend, self.project, services, include_deps=include_deps,
                                     ignore_failures=ignore_failures, progress=progress)

    def push(
        self, services: Sequence[str] = (), *, ignore_failures: bool = False,
        progress: TransferProgress | None = None,
    ) -> list[pulling.Transfer]:
        """Push the images of services that are built here (`build:` and `image:`)."""
        return pulling.push_services(self.backend, self.project, services, ignore_failures=ignore_failures,
                                     progress=progress)

    # -- one-off containers ----------------------------------------------------------------

    def run(
        self,
        service: str,
        command: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        entrypoint: str | None = None,
        user: str | None = None,
        workdir: str | None = None,
        name: str | None = None,
        no_deps: bool = False,
        detach: bool = False,
        rm: bool = False,
        output: IO[str] | None = None,
        reporter: Reporter | None = None,
    ) -> RunResult:
        """A one-off container of `service` (dependencies brought up first unless `no_deps`).

        Labelled `oneoff` so `up` never treats it as a replica or an orphan; publishes no ports
        (as Compose without `--service-ports`). Unless `detach`, its output goes to `output` and
        the call returns its exit code.
        """
        from stackup.planner.specs import container_spec

        project = self.project
        if service not in project.services:
            raise NotFound(f"no such service: {service}")
        deps = tuple(sorted(project.services[service].depends_on))
        if deps and not no_deps:
            self.up(deps, reporter=reporter)
        base = container_spec(
            project, service, project.services[service], 1,
            labels={lbl.PROJECT: project.name, lbl.SERVICE: service, lbl.ONEOFF: lbl.TRUE},
            referenced_files=self.loaded.referenced_files if self.loaded else {},
        )
        spec = dataclasses.replace(
            base,
            name=name or f"{project.name}-{service}-run-{secrets.token_hex(6)}",
            command=tuple(command) if command else base.command,
            entrypoint=(entrypoint,) if entrypoint else base.entrypoint,
            environment={**base.environment, **dict(env or {})},
            user=user or base.user,
            working_dir=workdir or base.working_dir,
            ports=(),
            restart="no",
        )
        info = self.backend.create_container(spec)
        self.backend.start_container(info.id)
        if detach:
            return RunResult(spec.name)
        try:
            for entry in self.backend.logs(info.id, follow=True):
                if output is not None:
                    output.write(entry.text + "\n")
                    output.flush()
            code = self.backend.wait_container(info.id)
        except KeyboardInterrupt:
            self.backend.stop_container(info.id)
            code = 130
        finally:
            if rm:
                with contextlib.suppress(RuntimeFailure):  # already gone: nothing left to remove
                    self.backend.remove_container(info.id)
        return RunResult(spec.name, code)


    # -- secret environment values (never printed) ------------------------------------------

    def secret_values(self, containers: Sequence[ContainerInfo] | None = None) -> frozenset[str]:
        """Values a front end must mask (`stackup.spec.secretenv`): those the loaded stack marks
        secret, and those the project's containers (or `containers`) were created with marked."""
        import json

        from stackup.spec.secretenv import secret_values, values_from_config

        found: set[str] = set()
        if self.loaded is not None:
            found |= secret_values(self.loaded.project, self.loaded.environment)
        for info in self.ps(oneoff=True) if containers is None else containers:
            try:
                config = json.loads(info.labels.get(lbl.CONFIG) or "{}")
            except ValueError:
                continue
            if isinstance(config, dict) and config.get("x-stackup-secret"):
                found |= values_from_config(config, _container_env(info))
        return frozenset(found)

    # -- development loop ------------------------------------------------------------------

    def reload(self) -> LoadedProject:
        """Load the stack files again as they were loaded (raises `SpecError`; on error the
        previous model stays)."""
        from stackup.spec.loader import load

        if self.load_options is None:
            raise UsageError(f"project {self.name}: reloading needs a stack loaded from files")
        loaded = load(self.load_options)
        if loaded.project.name != self.name:
            raise UsageError(
                f"the project name changed ({self.name} -> {loaded.project.name}): restart watch")
        self.loaded = loaded
        return loaded

    def watch(
        self,
        services: Sequence[str] = (),
        *,
        up: bool = True,
        prune: bool = False,
        on_event: Callable[[WatchEvent], None] | None = None,
        stop: threading.Event | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        """`stackup watch`: apply `develop.watch` rules as files change, until `stop` is set.

        With `up`, the services are brought up first (as `up` would). Each action is reported
        to `on_event` as a `stackup.dev.report.WatchEvent` (`web: synced 3 files (14 ms)`). A
        change to the stack files (includes, `.env`) is re-loaded, planned and applied; an
        invalid file is reported and changes nothing. `prune` removes an image a rebuild left
        dangling. Raises `UsageError` when no service in scope has `develop.watch` rules.
        """
        from stackup.dev.report import EventKind
        from stackup.dev.report import WatchEvent as _Event
        from stackup.dev.rules import project_matchers
        from stackup.dev.stackfile import StackInputs, replan
        from stackup.dev.watch import Hooks, WatchSession

        names = tuple(services)
        if not project_matchers(self.project, names):
            scope = ", ".join(names) if names else "the stack"
            raise UsageError(f"no service of {scope} has develop.watch rules: nothing to watch "
                             "(see https://docs.docker.com/compose/how-tos/file-watch/)")
        if up:
            self.up(names, reporter=reporter)
        sink = on_event or (lambda _event: None)
        stopper = stop or threading.Event()

        def on_stack_change(changed: list[Path]) -> _Event:
            return replan(changed, self.reload, lambda: self.plan(names),
                          lambda: self.up(names, reporter=reporter))

        def rebuild(service: str) -> str:
            return self._watch_rebuild(service, prune=prune, reporter=reporter)

        hooks = Hooks(
            matchers=lambda: project_matchers(self.project, names),
            inputs=lambda: StackInputs.of(self.loaded) if self.loaded else StackInputs(frozenset()),
            on_stack_change=on_stack_change,
            rebuild=rebuild,
        )
        del EventKind
        WatchSession(self.name, self.backend, hooks, sink, stopper).run()

    def _watch_rebuild(self, service: str, *, prune: bool, reporter: Reporter | None) -> str:
        """A `rebuild` action: build the image through the cache, recreate the service (not its
        dependencies), restart the services whose `depends_on.<service>.restart` is true. A failed
        build, or a new container that does not start (`_watch_candidate`), raises before the old
        container is touched, so it keeps serving."""
        started = time.monotonic()
        old_images = {c.image_id for c in self.ps([service]) if c.image_id}
        lines: list[str] = []
        self.build([service], progress=lambda _service, line: lines.append(line))
        built_s = time.monotonic() - started
        cached = sum(1 for line in lines if line.endswith(" CACHED"))
        steps = cached + sum(1 for line in lines if " DONE " in line and " | " not in line)
        tried = self._watch_candidate(service)
        self.up([service], no_deps=True, reporter=reporter)
        parts = [f"rebuilt ({built_s:.1f} s, {cached} of {steps} steps cached)",
                 f"new container {tried}, swapped" if tried else "recreated"]
        dependents = sorted(
            name for name, other in self.project.services.items()
            if service in other.depends_on and other.depends_on[service].restart
        )
        if dependents and self.restart(dependents):
            parts.append("restarted " + ", ".join(dependents))
        if prune:
            in_use = {c.image_id for c in self.ps()}
            for image in old_images - in_use:
                with contextlib.suppress(RuntimeFailure, NotFound):
                    self.backend.remove_image(image)
        return ", ".join(parts)

    def _watch_candidate(self, service: str) -> str | None:
        """Create-then-swap (`stackup.dev.swap`): a rebuilt service whose old container runs gets
        its new one tried first; raises `CandidateFailed` (the old one untouched). What passed,
        or None when nothing was tried (nothing running to protect, nothing to recreate)."""
        from stackup.dev.swap import triable, try_candidate
        from stackup.planner.plan import OpKind

        if not any(c.state is ContainerState.RUNNING for c in self.ps([service])):
            return None
        spec = next((op.spec for op in self.plan([service], no_deps=True)
                     if op.service == service and op.kind in (OpKind.RECREATE, OpKind.CREATE)
                     and isinstance(op.spec, ContainerSpec)), None)  # fmt: skip
        if spec is None or not triable(spec):
            return None
        return try_candidate(self.backend, spec)

    def explain_watch(self, path: str | Path, services: Sequence[str] = ()) -> list[str]:
        """`stackup watch --explain PATH`: which rule and which ignore pattern decide `path`."""
        from stackup.dev.rules import explain, project_matchers

        return explain(project_matchers(self.project, tuple(services)), Path(path).absolute())

    # -- deploy to a cluster: Kubernetes, Docker Swarm (`api.deploying`) --------------------

    @classmethod
    def for_cluster(cls, source: LoadOptions | LoadedProject, *, runtime: str | None = None) -> Stack:
        """The stack (loaded from `source`, or as loaded) for `render`, `plan_cluster` and
        `deploy`: the local runtime is opened only if a method uses it (`deploy(push=True)`), so
        deploying starts no engine."""
        from stackup.api.deploying import LazyBackend
        from stackup.spec.loader import LoadedProject, load

        options = None if isinstance(source, LoadedProject) else source
        loaded = source if isinstance(source, LoadedProject) else load(source)
        environ = options.environ if options else None
        backend = LazyBackend(lambda: open_backend(runtime, environ)).as_backend()
        stack = cls(backend, loaded.project.name, loaded)
        stack.load_options = options
        return stack

    def render(self, target: str = "kubernetes", *, namespace: str | None = None,
               volume_workload: str = "statefulset", on_warning: Callable[[str], None] | None = None) -> str:
        """The stack as Kubernetes manifests (multi-document YAML); keys that do not map go to
        `on_warning` with their `file:line:col`."""
        from stackup.api import deploying

        return deploying.render_yaml(self._loaded(), deploying.DeployTarget(target), namespace,
                                     deploying.VolumeWorkload(volume_workload), on_warning or _ignore)

    def plan_cluster(self, target: str = "kubernetes", *, namespace: str | None = None,
                     context: str | None = None, volume_workload: str = "statefulset",
                     on_warning: Callable[[str], None] | None = None) -> deploying.ClusterPlan:
        """What `deploy` would change against the cluster's current objects, field by field."""
        from stackup.api import deploying

        return deploying.plan(self._loaded(), deploying.DeployTarget(target), namespace=namespace,
                              context=context, workload=deploying.VolumeWorkload(volume_workload),
                              on_warning=on_warning or _ignore)

    def deploy(
        self, target: str, *, namespace: str | None = None, context: str | None = None,
        dry_run: bool = False, down: bool = False, push: bool = False, volumes: bool = False,
        volume_workload: str = "statefulset", routing_mesh: bool = True,
        on_warning: Callable[[str], None] | None = None,
    ) -> deploying.Deployed:
        """Deploy to Kubernetes (server-side apply, `dry_run`, `namespace`, `context`) or Docker
        Swarm (`routing_mesh=False` for nodes without IPVS); `down` removes what stackup made
        (Swarm: named volumes with `volumes`). `push` first pushes the images built here; it is
        left out of a dry run and of `down`."""
        from stackup.api import deploying

        kind, warn = deploying.DeployTarget(target), on_warning or _ignore
        if kind is deploying.DeployTarget.SWARM and (namespace or context or dry_run):
            raise UsageError("--namespace, --context and --dry-run apply to --target kubernetes only")
        lines: list[str] = []
        if push and dry_run:
            warn("--push is left out with --dry-run: a dry run changes nothing, in the registry either")
        elif push and not down:
            lines += deploying.pushed_lines(self.push(), self.project, warn)
        if kind is deploying.DeployTarget.KUBERNETES:
            lines += deploying.kubernetes(self._loaded(), namespace=namespace, context=context,
                                          dry_run=dry_run, down=down, on_warning=warn,
                                          workload=deploying.VolumeWorkload(volume_workload))
        else:
            lines += deploying.swarm(self._loaded(), down=down, volumes=volumes, routing_mesh=routing_mesh,
                                     on_warning=warn)
        return deploying.Deployed(tuple(lines))

    def _loaded(self) -> LoadedProject:
        if self.loaded is None:
            raise UsageError(f"project {self.name}: this needs the stack file (Stack.load)")
        return self.loaded


def _ignore(_message: str) -> None:
    """The default `on_warning`: a caller that passes none does not want them."""

class _StopTimeout:
    """Overrides each container's grace period during one operation (`down -t`): a runtime
    that supports it has a `stop_timeout_s` attribute; others use each container's own."""

    def __init__(self, backend: Backend, timeout: float | None) -> None:
        self.backend = backend
        self.timeout = timeout
        self.previous: float | None = None
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        if self.timeout is not None and hasattr(self.backend, "stop_timeout_s"):
            self.previous = self.backend.stop_timeout_s
            self.backend.stop_timeout_s = self.timeout

    def __exit__(self, *_exc: object) -> None:
        if self.timeout is not None and hasattr(self.backend, "stop_timeout_s"):
            self.backend.stop_timeout_s = self.previous


def _progress_of(reporter: Reporter | None) -> Callable[[str, str], None] | None:
    """`up --build` shows its builds' progress through the reporter, as warnings-free plain lines."""
    if reporter is None:
        return None
    sink = reporter

    def show(service: str, line: str) -> None:
        sink.build_progress(service, line)

    return show


def _with_args(spec: BuildSpec, build_args: Mapping[str, str] | None) -> BuildSpec:
    if not build_args:
        return spec
    return dataclasses.replace(spec, args={**spec.args, **build_args})


def _container_env(info: ContainerInfo) -> dict[str, str]:
    """The environment a backend recorded: the engine's `config.env`, Docker's `Config.Env`."""
    details = info.details
    native = details.get("config")
    if isinstance(native, dict) and isinstance(native.get("env"), dict):
        return {str(k): str(v) for k, v in native["env"].items()}
    docker = details.get("Config")
    if isinstance(docker, dict) and isinstance(docker.get("Env"), list):
        return dict(str(item).partition("=")[::2] for item in docker["Env"])
    return {}
