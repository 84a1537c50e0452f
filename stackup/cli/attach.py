"""What `up` does after the plan ran: attach to logs, wait for readiness, explain failures.

Attached `up` streams every container's log with a coloured `name |` prefix, and on Ctrl-C stops
the stack gracefully (a second Ctrl-C kills). `--abort-on-container-exit`/`-failure` and
`--exit-code-from` make it the test-runner pattern: the first exit stops the rest and its code is
stackup's exit code. `--wait` returns once every service reached its target state.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from stackup.cli.output import error, write
from stackup.errors import RuntimeFailure
from stackup.runtime import labels as lbl
from stackup.runtime.base import ContainerInfo, ContainerState, Health

if TYPE_CHECKING:
    from stackup.planner.execute import Outcome
    from stackup.runtime.native.runtime import NativeRuntime
    from stackup.spec.models import Project

# One colour per container prefix, shared by attached `up` and `logs`.
COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "bright_cyan", "bright_yellow", "bright_green")
POLL_S = 0.1
LOG_TAIL = 20
PROBE_TAIL = 3


def _containers(rt: NativeRuntime, project: Project, services: tuple[str, ...]) -> list[ContainerInfo]:
    out = []
    for info in rt.list_containers(project.name):
        service = info.labels.get(lbl.SERVICE, "")
        if info.labels.get(lbl.ONEOFF) == lbl.TRUE:
            continue
        if services and service not in services:
            continue
        out.append(info)
    return sorted(out, key=lambda c: c.name)


def _stream(rt: NativeRuntime, info: ContainerInfo, prefix: str, lock: threading.Lock) -> None:
    from rich.markup import escape

    from stackup.cli.output import out

    try:
        for line in rt.client.logs(info.id, follow=True):
            with lock:
                out().print(f"{prefix}{escape(line.text)}", highlight=False)
    except RuntimeFailure:
        return  # the container went away while we followed it: its last lines were printed


def attach(
    rt: NativeRuntime,
    project: Project,
    services: tuple[str, ...],
    *,
    abort_on_exit: bool,
    abort_on_failure: bool,
    exit_code_from: str | None,
    stop_timeout: float | None,
) -> int:
    """Follow logs until every container exits, an abort condition fires, or Ctrl-C."""
    containers = _containers(rt, project, services)
    width = max((len(c.name) for c in containers), default=0)
    lock = threading.Lock()
    for i, info in enumerate(containers):
        colour = COLOURS[i % len(COLOURS)]
        prefix = f"[{colour}]{info.name:<{width}} |[/] "
        threading.Thread(target=_stream, args=(rt, info, prefix, lock), daemon=True).start()
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        code = _watch(rt, containers, interrupted, abort_on_exit, abort_on_failure, exit_code_from)
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
    _stop_all(rt, containers, stop_timeout)
    time.sleep(POLL_S)  # let the log threads print the last lines
    return code


def _watch(
    rt: NativeRuntime,
    containers: list[ContainerInfo],
    interrupted: threading.Event,
    abort_on_exit: bool,
    abort_on_failure: bool,
    exit_code_from: str | None,
) -> int:
    while not interrupted.wait(POLL_S):
        states = [rt.inspect_container(c.id) for c in containers]
        exited = [s for s in states if s.state in (ContainerState.EXITED, ContainerState.DEAD)]
        if exit_code_from:
            mine = [s for s in exited if s.labels.get(lbl.SERVICE) == exit_code_from]
            if mine:
                return mine[0].exit_code or 0
            continue
        for s in exited:
            if abort_on_exit or (abort_on_failure and s.exit_code):
                sys.stderr.write(f"{s.name} exited with code {s.exit_code}\n")
                return s.exit_code or 0
        if len(exited) == len(states):
            return 0
    return 130


def _stop_all(rt: NativeRuntime, containers: list[ContainerInfo], timeout: float | None) -> None:
    """Stop in parallel; a second Ctrl-C kills instead of waiting out grace periods."""

    def force(*_: object) -> None:
        for c in containers:
            with contextlib.suppress(RuntimeFailure):
                rt.client.kill_container(c.id, "SIGKILL")

    previous = signal.signal(signal.SIGINT, force)
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(containers))) as pool:
            list(pool.map(lambda c: rt.stop_container(c.id, timeout), containers))
    finally:
        signal.signal(signal.SIGINT, previous)


def _target(project: Project, info: ContainerInfo) -> str:
    from stackup.planner.targets import target

    service = info.labels.get(lbl.SERVICE, "")
    if service not in project.services:
        return "running"
    return str(target(project, service, has_healthcheck=info.health is not Health.NONE))


def _reached(target: str, info: ContainerInfo) -> bool | None:
    """True when reached, False to keep waiting, None when it can no longer be reached.

    A container between automatic restarts (`restarting`) is still waited for: its policy may
    bring it up, and the timeout bounds the wait. `unhealthy` ends the wait at once, as Compose
    does, because the dependents that `up` started are already failing behind it.
    """
    if target == "completed":
        if info.state in (ContainerState.EXITED, ContainerState.DEAD):
            return True if info.exit_code == 0 else None
        return False
    if info.state in (ContainerState.EXITED, ContainerState.DEAD):
        return None
    if target == "healthy":
        if info.health is Health.UNHEALTHY:
            return None
        return info.health is Health.HEALTHY
    return info.state is ContainerState.RUNNING


def wait_scope(project: Project, services: tuple[str, ...], *, no_deps: bool) -> tuple[str, ...]:
    """The services `up --wait` waits for: all of them, or the named ones and (unless `--no-deps`)
    everything they depend on, which is exactly what that `up` started."""
    if not services:
        return ()
    if no_deps:
        return services
    from stackup.planner.graph import dependencies, with_dependencies

    return tuple(sorted(with_dependencies(dependencies(project), services)))


def wait_ready(
    rt: NativeRuntime,
    project: Project,
    services: tuple[str, ...],
    *,
    no_deps: bool,
    timeout_s: float,
    started: float | None = None,
) -> None:
    """`up --wait`: every container reaches its target (running / healthy / completed) or we fail.

    `started` (a `time.monotonic()` value) is when `up` began: `--wait-timeout` bounds the whole
    `up`, dependency waits included, not only this last step. Exits 1 naming the blocking chain.
    """
    containers = _containers(rt, project, wait_scope(project, services, no_deps=no_deps))
    deadline = (time.monotonic() if started is None else started) + timeout_s
    pending = {c.id: _target(project, c) for c in containers}
    while pending:
        for cid, target in list(pending.items()):
            info = rt.inspect_container(cid)
            reached = _reached(target, info)
            if reached:
                del pending[cid]
            elif reached is None:
                explain_container(rt, project, info, f"did not become {target}")
                raise SystemExit(1)
        if pending and time.monotonic() > deadline:
            for cid, target in pending.items():
                info = rt.inspect_container(cid)
                explain_container(rt, project, info, f"not {target} after {timeout_s:g}s")
            raise SystemExit(1)
        if pending:
            time.sleep(POLL_S / 2)


def _dependents_chain(project: Project, service: str) -> str:
    """`web <- api <- db`: who waits on `service`, to name the blocking chain."""
    chain = [service]
    current = service
    while True:
        parents = sorted(n for n, s in project.services.items() if current in s.depends_on and n not in chain)
        if not parents:
            break
        chain.insert(0, parents[0])
        current = parents[0]
    return " <- ".join(chain)


def explain_container(rt: NativeRuntime, project: Project, info: ContainerInfo, what: str) -> None:
    """One line naming the chain and the state, then the probes and the log tail that say why."""
    service = info.labels.get(lbl.SERVICE, info.name)
    detail = f"exit code {info.exit_code}" if info.state is ContainerState.EXITED else str(info.health)
    if info.last_probe:
        detail += f'; last probe: "{info.last_probe}"'
    error(f"{_dependents_chain(project, service)} ({info.name} {what}: {detail})")
    _probe_tail(rt, info)
    _log_tail(rt, info)


def _probe_tail(rt: NativeRuntime, info: ContainerInfo) -> None:
    """The last health probes (time, exit code, output): one output alone rarely tells a flaky
    check from a dead service."""
    try:
        health = rt.client.inspect_container(info.id).health or {}
    except RuntimeFailure:
        return
    probes = list(health.get("log") or [])[-PROBE_TAIL:]
    if probes:
        write(f"--- last {len(probes)} health probes of {info.name} ---")
        for probe in probes:
            output = " ".join(str(probe.get("output", "")).split())
            write(f"{info.name} | {probe.get('end', '')} exit {probe.get('exit_code')}: {output}")


def _log_tail(rt: NativeRuntime, info: ContainerInfo) -> None:
    try:
        lines = list(rt.client.logs(info.id, tail=LOG_TAIL))
    except RuntimeFailure:
        return
    if lines:
        write(f"--- last {len(lines)} log lines of {info.name} ---")
        for line in lines:
            write(f"{info.name} | {line.text}")


def explain_failures(rt: NativeRuntime, project: Project, outcome: Outcome) -> None:
    """Every failure and every operation it blocked, then, for each failed service and each
    service at the root of a blocked chain (a dependency that never became healthy), its last
    probes and log tail: that is where the cause is, not in the dependent that was skipped."""
    for _, exc in sorted(outcome.failed.items()):
        error(str(exc))
    for _, skipped in sorted(outcome.skipped.items()):
        error(str(skipped))
    culprits = {op.split(":", 1)[-1].rsplit("-", 1)[0] for op in outcome.failed}
    culprits |= {e.chain[-1] for e in outcome.skipped.values() if e.chain}
    for info in _containers(rt, project, ()):
        if info.labels.get(lbl.SERVICE) in culprits:
            _probe_tail(rt, info)
            _log_tail(rt, info)
