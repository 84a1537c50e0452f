"""Walk a `Plan` with as much parallelism as its edges allow. No decisions: the plan has them all.

Each operation starts as soon as its own prerequisites are done and, for an edge that carries a
`depends_on` condition, as soon as the dependency meets it; there are no "layers", so a slow branch
never holds up an unrelated one. Conditions are checked by *gates*, one per (service, condition):
a gate runs after every operation of that service and polls the runtime (`conditions.wait_for`).
Gates wait in their own small pool so `parallel` limits engine operations, not waiting.

A replica that waits behind a gate is created while its dependencies are getting ready and only
its start waits (Compose, too, creates every container before starting any): the dependent then
starts one poll after its dependency is ready, rather than one container creation later.

A failure short-circuits everything downstream with `UpstreamFailed`, whose message follows the
chain to the cause (`web <- api <- db (unhealthy: last probe "...")`). An edge from a
`required: false` dependency only warns. Bookkeeping happens in the calling thread only; workers run
one operation or one wait and return.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stackup.errors import OperationFailed, RuntimeFailure, StackupError, UpstreamFailed
from stackup.planner.conditions import WaitPolicy, wait_for
from stackup.planner.operations import run_operation
from stackup.planner.plan import Operation, OpKind, Plan, ResourceKind
from stackup.planner.reporter import NullReporter, Reporter
from stackup.runtime.base import ContainerSpec, Runtime

if TYPE_CHECKING:
    from stackup.spec.models import DependsCondition

PRECREATE = "precreate"
"""Node-id prefix of the early create of a gated replica (`precreate:service:web-1`)."""

PRESTOP = "prestop"
"""Node-id prefix of the stop half of a container's removal in `down` (`prestop:service:web-1`)."""

DEFAULT_PARALLEL = 16
"""Default concurrent operations: enough to overlap I/O, few enough for a 2-core CI machine."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened: operations done (in completion order), failed and skipped (by operation id)."""

    done: tuple[str, ...] = ()
    failed: Mapping[str, OperationFailed] = field(default_factory=dict)
    skipped: Mapping[str, UpstreamFailed] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def raise_for_failures(self) -> None:
        """Raise one `RuntimeFailure` naming every failure and every operation it blocked."""
        if self.ok:
            return
        lines = [str(e) for _, e in sorted(self.failed.items())]
        lines += [str(e) for _, e in sorted(self.skipped.items())]
        raise RuntimeFailure("\n".join(dict.fromkeys(lines)))


@dataclass(frozen=True, slots=True)
class _Gate:
    service: str
    condition: DependsCondition

    @property
    def id(self) -> str:
        return f"gate:{self.service}:{self.condition}"


@dataclass(frozen=True, slots=True)
class _Need:
    """An incoming edge of the task graph: `node` must succeed unless `required` is False."""

    node: str
    required: bool = True


def execute(
    plan: Plan,
    runtime: Runtime,
    reporter: Reporter | None = None,
    *,
    parallel: int | None = None,
    wait: WaitPolicy | None = None,
) -> Outcome:
    """Run every operation of `plan`; returns the outcome (call `raise_for_failures` to fail loudly).

    `parallel` caps concurrent operations (`1` runs them one at a time, in the plan's order);
    None means `DEFAULT_PARALLEL`.
    """
    return _Walk(plan, runtime, reporter or NullReporter(), wait or WaitPolicy()).run(
        parallel or DEFAULT_PARALLEL
    )


class _Walk:
    def __init__(self, plan: Plan, runtime: Runtime, reporter: Reporter, wait: WaitPolicy) -> None:
        self.plan = plan
        self.runtime = runtime
        self.reporter = reporter
        self.wait = wait
        self.needs: dict[str, list[_Need]] = {}
        self.gates: dict[str, _Gate] = {}
        self.parts: dict[str, str] = {}  # precreate/prestop node -> the operation it is part of
        self.containers: dict[str, str] = {}  # op id -> container id, once known
        self.done: list[str] = []
        self.failed: dict[str, OperationFailed] = {}
        self.blamed: dict[str, str] = {}  # node -> the failed/skipped prerequisite that blocked it
        self.skipped: dict[str, UpstreamFailed] = {}
        self.warnings: list[str] = []
        self._build()

    def _build(self) -> None:
        """Ops plus gates: `db-1 -> gate:db:service_healthy -> api-1` instead of a direct edge."""
        by_service: dict[str, list[str]] = {}
        for op in self.plan:
            self.needs[op.id] = []
            if op.service is not None and op.kind is not OpKind.REMOVE:
                by_service.setdefault(op.service, []).append(op.id)
        for op in self.plan:
            for pred, w in sorted(self.plan.prerequisites(op.id).items()):
                service = self.plan.op(pred).service
                if w is None or service is None:
                    self.needs[op.id].append(_Need(pred))
                    continue
                gate = _Gate(service, w.condition)
                if gate.id not in self.gates:
                    self.gates[gate.id] = gate
                    self.needs[gate.id] = [_Need(n) for n in by_service[service]]
                if all(n.node != gate.id for n in self.needs[op.id]):
                    self.needs[op.id].append(_Need(gate.id, w.required))
        for op in self.plan:
            self._split_create(op)
        self._split_stops()

    def _split_create(self, op: Operation) -> None:
        """`precreate:<op> -> <op>`: the create needs what the op needs except its gates; the op
        (now only the start) needs the gates and the create. Not for `network_mode: service:x`,
        whose create needs x's container to exist already."""
        spec = op.spec
        if op.kind is not OpKind.CREATE or not isinstance(spec, ContainerSpec):
            return
        if (spec.network_mode or "").startswith("service:"):
            return
        needs = self.needs[op.id]
        if not any(n.node in self.gates for n in needs):
            return
        pre = f"{PRECREATE}:{op.id}"
        self.parts[pre] = op.id
        self.needs[pre] = [n for n in needs if n.node not in self.gates]
        self.needs[op.id] = [*(n for n in needs if n.node in self.gates), _Need(pre)]

    def _split_stops(self) -> None:
        """`prestop:<op> -> <op>` for each container removal: a dependency waits only until its
        dependents are *stopped* (the graceful order), not removed, so unmounting and network
        teardown overlap the rest of the walk instead of adding up level by level. Networks and
        volumes still wait for the removals themselves."""
        removals = {
            op.id
            for op in self.plan
            if op.kind is OpKind.REMOVE and op.resource is ResourceKind.SERVICE and op.container is not None
        }
        for op_id in sorted(removals):
            pre = f"{PRESTOP}:{op_id}"
            self.parts[pre] = op_id
            self.needs[pre] = [
                _Need(f"{PRESTOP}:{n.node}", n.required) if n.node in removals else n
                for n in self.needs[op_id]
            ]
            self.needs[op_id] = [_Need(pre)]

    def run(self, parallel: int) -> Outcome:
        dependents: dict[str, list[str]] = {n: [] for n in self.needs}
        for node, needs in self.needs.items():
            for need in needs:
                dependents[need.node].append(node)
        remaining = {n: len(needs) for n, needs in self.needs.items()}
        order = {op.id: i for i, op in enumerate(self.plan)}
        ready = sorted((n for n, c in remaining.items() if c == 0), key=lambda n: order.get(n, -1))
        ops_pool = cf.ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="stackup-op")
        gate_pool = cf.ThreadPoolExecutor(
            max_workers=max(1, min(64, len(self.gates))), thread_name_prefix="stackup-wait"
        )
        running: dict[cf.Future[str | None], str] = {}
        queued: list[str] = []  # operations waiting for a worker
        busy = 0  # operations (not gates) running
        try:
            while ready or running or queued:
                for node in ready:
                    if node in self.gates:
                        running[gate_pool.submit(self._work, node)] = node
                    else:
                        queued.append(node)
                ready = []
                # Handed to workers only as they free up, so the order can still change: a
                # container's start (which unblocks its dependents' gates) goes before the early
                # creates of dependents, which would otherwise hold every worker until all exist.
                queued.sort(key=lambda n: (n.startswith(f"{PRECREATE}:"), order.get(n, -1)))
                while queued and busy < parallel:
                    node = queued.pop(0)
                    running[ops_pool.submit(self._work, node)] = node
                    busy += 1
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: order.get(running[f], -1)):
                    node = running.pop(future)
                    busy -= node not in self.gates
                    self._settle(node, future)
                    settled = [node]
                    while settled:
                        current = settled.pop()
                        for nxt in dependents[current]:
                            self._note_blame(current, nxt)
                            remaining[nxt] -= 1
                            if remaining[nxt] > 0:
                                continue
                            if nxt in self.blamed:
                                self._skip(nxt)
                                settled.append(nxt)
                            else:
                                ready.append(nxt)
                ready.sort(key=lambda n: order.get(n, -1))
        finally:
            ops_pool.shutdown(wait=True, cancel_futures=True)
            gate_pool.shutdown(wait=True, cancel_futures=True)
        # a failed gate is reported through what it blocked (or as a warning when nothing required it);
        # a failed early create is its operation's failure
        failed = {self.parts.get(n, n): e for n, e in self.failed.items() if n not in self.gates}
        skipped = {
            n: e for n, e in self.skipped.items() if n not in self.gates and n not in self.parts
            and n not in failed
        }  # fmt: skip
        return Outcome(tuple(self.done), failed, skipped, tuple(self.warnings))

    # -- one node ---------------------------------------------------------------------------------

    def _work(self, node: str) -> str | None:
        """Worker body: one gate wait or one operation. Raises OperationFailed on failure."""
        gate = self.gates.get(node)
        if gate is not None:
            ops = [n.node for n in self.needs[node]]
            containers = [self.containers[o] for o in ops if o in self.containers]
            self.reporter.waiting(gate.service, gate.condition)
            wait_for(self.runtime, gate.service, containers, gate.condition, self.wait)
            self.reporter.ready(gate.service, gate.condition)
            return None
        part_of = self.parts.get(node)
        op = self.plan.op(part_of or node)
        try:
            if part_of is not None:  # the first half of a split operation
                self.reporter.op_started(op)
                if node.startswith(PRESTOP):
                    self.runtime.stop_container(_container_of(op))
                    return None
                assert isinstance(op.spec, ContainerSpec), node
                return self.runtime.create_container(op.spec).id
            if f"{PRECREATE}:{op.id}" in self.parts:
                self.runtime.start_container(self.containers[f"{PRECREATE}:{op.id}"])
                return self.containers[f"{PRECREATE}:{op.id}"]
            if f"{PRESTOP}:{op.id}" in self.parts:
                self.runtime.remove_container(_container_of(op))
                return None
            self.reporter.op_started(op)
            return run_operation(op, self.runtime, lambda line: self.reporter.op_progress(op, line))
        except OperationFailed:
            raise
        except StackupError as exc:
            raise OperationFailed(_who(op), str(exc)) from exc

    def _settle(self, node: str, future: cf.Future[str | None]) -> None:
        error = future.exception()
        if error is None:
            container = future.result()
            if container is not None:
                self.containers[node] = container
            self.done.append(node)
            if node not in self.gates and node not in self.parts:
                self.reporter.op_done(self.plan.op(node))
            return
        if not isinstance(error, OperationFailed):
            raise error  # a bug, not a runtime failure: keep its traceback
        self.failed[node] = error
        if node not in self.gates:
            self.reporter.op_failed(self.plan.op(self.parts.get(node, node)), error)

    def _note_blame(self, prerequisite: str, node: str) -> None:
        if prerequisite not in self.failed and prerequisite not in self.skipped:
            return
        need = next(n for n in self.needs[node] if n.node == prerequisite)
        if need.required:
            self.blamed.setdefault(node, prerequisite)
        elif node not in self.gates:
            message = (
                f"{_who(self.plan.op(node))}: optional dependency failed: {self._root_cause(prerequisite)}"
            )
            self.warnings.append(message)
            self.reporter.warning(message)

    def _skip(self, node: str) -> None:
        chain: list[str] = []
        cursor = self.blamed[node]
        while True:
            name = self._name(cursor)
            if not chain or chain[-1] != name:
                chain.append(name)
            if cursor not in self.blamed:
                break
            cursor = self.blamed[cursor]
        me = self._name(node)
        if chain and chain[0] == me:
            chain = chain[1:]
        error = UpstreamFailed(me, tuple(chain), self.failed[cursor].cause)
        self.skipped[node] = error  # recorded for every node: that is what blames the next ones
        early = (f"{PRECREATE}:{node}", f"{PRESTOP}:{node}")
        if node in self.gates or node in self.parts or any(e in self.failed for e in early):
            return  # internal, or its own first half failed and was reported as its failure
        self.reporter.op_skipped(self.plan.op(node), error)

    def _root_cause(self, node: str) -> str:
        while node in self.blamed:
            node = self.blamed[node]
        return str(self.failed[node])

    def _name(self, node: str) -> str:
        gate = self.gates.get(node)
        return gate.service if gate is not None else _who(self.plan.op(self.parts.get(node, node)))


def _container_of(op: Operation) -> str:
    assert op.container is not None, op.id
    return op.container


def _who(op: Operation) -> str:
    """How a chain names an operation: the service for replicas, `network x` for the rest."""
    if op.resource is ResourceKind.SERVICE and op.service is not None:
        return op.service
    return f"{op.resource} {op.name}"
