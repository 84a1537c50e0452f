"""Create-then-swap for a rebuilt service: the new container proves itself before the old one goes.

A rebuild's new container is first started as a *candidate* next to the old one: same image,
command, environment, volumes and networks, but under a temporary name, with no published host
ports (the old container holds them), no DNS name of the service (a service label of its own,
no aliases, no hostname: nothing routes to it), no fixed address, and no restart policy (a
crash must show, not loop). Its `post_start` hooks run, as they will again in the container
that replaces the old one. It passes when, in this order of preference:
1. it has a health check (its own or the image's): it reports healthy;
2. it declares TCP ports: each accepts a connection on the candidate's own address (it answers);
3. otherwise: it is still running after `SETTLE_S`.
It fails when it exits, turns unhealthy or cannot be created or started. Either way the
candidate is removed; only a passing one lets the caller replace the old container (the plain
recreate then starts the same image with the host ports: a second start, but ports cannot be
handed over from a running container). A failure raises `CandidateFailed` with the
candidate's log tail; the old container was never touched and keeps serving.

Services sharing another namespace (`network_mode: host`, `service:x`, `container:x`) are not
tried: a candidate there would fight the old container for its ports.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Callable

from stackup.errors import StackupError
from stackup.runtime import labels as lbl
from stackup.runtime.base import Backend, ContainerInfo, ContainerSpec, ContainerState, Health

SETTLE_S = 0.5
"""How long a candidate without a health check or ports must stay up to count as started: the
time a crashing interpreter or a missing module takes to bring a process down."""
PORT_WAIT_S = 10.0
"""How long to wait for a candidate's ports; a service still running but not listening by then
is accepted (a slow starter, or a port the host cannot reach)."""
HEALTH_WAIT_S = 120.0
POLL_S = 0.02
LOG_TAIL = 20
CANDIDATE = "stackup.watch.candidate"
"""Label naming the service a candidate stands for."""
CANDIDATE_SUFFIX = "--watch-candidate"
"""A candidate's service label is the service's name with this suffix: the label is what the
engine names a container in DNS by (so the service's name must not be it) and what `down` finds
a project's containers by (so a candidate left behind by a crash is still removed); with the
one-off label, `up`, `ps` and the watch's own syncs leave it alone."""


class CandidateFailed(StackupError):
    """The rebuilt service's new container did not start; `output` is its log tail."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def triable(spec: ContainerSpec) -> bool:
    """A candidate can run next to the old container (it has a network namespace of its own)."""
    return spec.network_mode is None or spec.network_mode in ("bridge", "none", "default")


def candidate_spec(spec: ContainerSpec) -> ContainerSpec:
    """`spec` as a candidate: a temporary name, nothing that routes to it or clashes with the old."""
    service = spec.labels.get(lbl.SERVICE, spec.name)
    labels = {k: v for k, v in spec.labels.items() if k != lbl.CONTAINER_NUMBER}
    labels |= {lbl.SERVICE: service + CANDIDATE_SUFFIX, lbl.ONEOFF: lbl.TRUE, CANDIDATE: service}
    networks = tuple(dataclasses.replace(n, aliases=(), ipv4_address=None, ipv6_address=None)
                     for n in spec.networks)  # fmt: skip
    return dataclasses.replace(
        spec, name=f"{spec.name}-next-{uuid.uuid4().hex[:6]}", labels=labels, ports=(),
        networks=networks, hostname=None, restart="no",
    )  # fmt: skip


def try_candidate(
    backend: Backend, spec: ContainerSpec, *, clock: Callable[[], float] = time.monotonic
) -> str:
    """Start `spec` as a candidate and wait until it passes; what passed (`healthy`, `answering on
    8000`, `running`). Raises `CandidateFailed`, the candidate removed. A passing candidate is
    removed on a thread of its own (not a daemon: the interpreter waits for it), so the swap
    need not wait for its stop."""
    candidate = candidate_spec(spec)
    try:
        info = backend.create_container(candidate)
    except StackupError as exc:
        raise CandidateFailed(f"new container not created: {exc}") from exc
    try:
        backend.start_container(info.id)
        verdict = _judge(backend, info.id, spec, clock)
    except CandidateFailed:
        _discard(backend, info.id)
        raise
    except StackupError as exc:
        output = _tail(backend, info.id)
        _discard(backend, info.id)
        raise CandidateFailed(f"new container did not start: {exc}", output) from exc
    except BaseException:
        _discard(backend, info.id)
        raise
    threading.Thread(target=_discard, args=(backend, info.id, True), name="watch-discard").start()
    return verdict


def _discard(backend: Backend, container: str, quiet: bool = False) -> None:
    """Stop and remove a candidate; `quiet` (on a thread) drops a failure: nothing would see it,
    and a candidate left over is labelled one-off (`stackup down` removes it)."""
    try:
        try:
            backend.stop_container(container, 0)
        finally:
            backend.remove_container(container)
    except StackupError:
        if not quiet:
            raise


def _judge(backend: Backend, container: str, spec: ContainerSpec, clock: Callable[[], float]) -> str:
    started = clock()
    ports = sorted({p.container_port for p in spec.ports if p.protocol == "tcp"})
    open_ports: set[int] = set()
    while True:
        info = backend.inspect_container(container)
        _fail_if_down(backend, info)
        elapsed = clock() - started
        if info.health is Health.HEALTHY:
            return "healthy"
        if info.health is Health.STARTING:
            if elapsed > HEALTH_WAIT_S:
                raise CandidateFailed(f"new container not healthy after {HEALTH_WAIT_S:g} s",
                                      _tail(backend, container))  # fmt: skip
        elif ports and info.addresses:
            address = next(iter(info.addresses.values()))
            open_ports |= {p for p in ports if p not in open_ports and _answers(address, p)}
            if open_ports == set(ports) or elapsed > PORT_WAIT_S:
                return "answering on " + ", ".join(map(str, sorted(open_ports))) if open_ports else "running"
        elif elapsed >= SETTLE_S:
            return "running"
        time.sleep(POLL_S)


def _fail_if_down(backend: Backend, info: ContainerInfo) -> None:
    if info.state in (ContainerState.EXITED, ContainerState.DEAD):
        raise CandidateFailed(f"new container exited with code {info.exit_code}", _tail(backend, info.id))
    if info.health is Health.UNHEALTHY:
        probe = f': last probe "{info.last_probe.strip()}"' if info.last_probe else ""
        raise CandidateFailed(f"new container unhealthy{probe}", _tail(backend, info.id))


def _answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


def _tail(backend: Backend, container: str) -> str:
    try:
        return "\n".join(e.text for e in backend.logs(container, tail=LOG_TAIL))
    except StackupError:
        return ""
