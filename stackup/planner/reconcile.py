"""Desired state + observed state -> `Plan`. Pure: no I/O, no clock, same inputs same plan.

Every decision `up` makes lives here, so it can be tested with a hand-made `Observed` and read as
a golden `str(plan)`. The order of work: check the graph (cycles), pick the services (selection plus
dependencies), plan the resources they need (networks, volumes, images), decide each replica
(create, recreate, start, nothing; extra replicas removed), propagate `depends_on.restart` along
the graph, deal with orphans, and finally wire the edges `execute` walks.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import networkx as nx

from stackup import __version__
from stackup.errors import PlanError
from stackup.planner.adoption import adopted_changes
from stackup.planner.changes import Change, diff_components
from stackup.planner.graph import Dependencies, dependencies, dependency_order, with_dependencies
from stackup.planner.hashing import ServiceHash, service_hash
from stackup.planner.observed import Observed, ObservedContainer
from stackup.planner.options import ReconcileOptions, Recreate
from stackup.planner.plan import Operation, OpKind, Plan, ResourceKind, Wait
from stackup.planner.pulls import local_image
from stackup.planner.resources import plan_images, plan_networks, plan_volumes
from stackup.planner.specs import container_spec, image_ref, service_networks, service_volume_keys
from stackup.planner.targets import is_job
from stackup.runtime import labels as lbl
from stackup.runtime.base import ContainerSpec
from stackup.spec.implicit import NAMESPACE_KEYS, implicit_refs_of

if TYPE_CHECKING:
    from stackup.spec.models import DependsCondition, Project, Service

_SHORT_ID = 19  # "sha256:" + 12 hex, as `docker images` shows IDs


def reconcile(project: Project, observed: Observed, options: ReconcileOptions | None = None) -> Plan:
    """Plan what `up` must do to make `observed` match `project`.

    Raises `DependencyCycle` for a cyclic graph and `PlanError` for a request that cannot be met
    (unknown service selected, external resource missing, image missing with `pull_policy: never`).
    """
    options = options or ReconcileOptions()
    deps = dependencies(project)
    order = dependency_order(project, deps)  # raises DependencyCycle
    unknown = sorted(set(options.services) - set(project.services))
    if unknown:
        raise PlanError(f"no such service: {', '.join(unknown)}")
    selected = set(options.services) or set(project.services)
    everything = len(selected) == len(project.services)
    targets = selected if options.no_deps or everything else with_dependencies(deps, selected)
    return _Reconciler(project, observed, options, deps, order).run(selected, targets)


class _Reconciler:
    """One reconcile run's working state; `run` is the only entry point."""

    def __init__(
        self,
        project: Project,
        observed: Observed,
        options: ReconcileOptions,
        deps: Dependencies,
        order: list[str],
    ) -> None:
        self.project = project
        self.observed = observed
        self.options = options
        self.deps = deps
        self.service_ops: dict[str, list[Operation]] = {}
        self.removals: list[Operation] = []
        self.warnings: list[str] = []
        self.order = order

    def run(self, selected: set[str], targets: set[str]) -> Plan:
        order = [s for s in self.order if s in targets]
        networks = plan_networks(self.project, self.observed, order)
        volumes = plan_volumes(self.project, self.observed, order)
        images = plan_images(
            self.project, self.observed, order, build=self.options.build, no_build=self.options.no_build,
            pull=self.options.pull, refreshed=self.options.refreshed, now=self.options.now,
        )
        containers = self.observed.by_service()
        for name in order:
            policy = self.options.recreate if name in selected else self.options.recreate_deps
            image_op = images.get(image_ref(self.project, name, self.project.services[name]))
            self._plan_service(name, containers.get(name, []), policy, image_op)
        self._propagate_restarts(containers)
        self._plan_orphans(containers)

        # nodes and edges are collected and added in one call each: networkx's per-call cost
        # is most of the time spent building the plan of a large stack
        nodes = [*networks.values(), *volumes.values(), *images.values(), *self.removals]
        edges: list[tuple[str, str, dict[str, Wait]]] = []
        for name, ops in self.service_ops.items():
            service = self.project.services[name]
            needs = [networks.get(k) for k in service_networks(service)]
            needs += [volumes.get(k) for k in service_volume_keys(self.project, service)]
            needs.append(images.get(image_ref(self.project, name, service)))
            ids = [n.id for n in needs if n is not None]
            for op in ops:
                nodes.append(op)
                edges.extend((n, op.id, {}) for n in ids)
        edges.extend(self._dependency_edges())
        plan = nx.DiGraph()
        plan.add_nodes_from((op.id, {"op": op}) for op in nodes)
        plan.add_edges_from(edges)
        return Plan(self.project.name, plan, tuple(self.warnings))

    # -- replicas ---------------------------------------------------------------------------------

    def _plan_service(
        self, name: str, found: list[ObservedContainer], policy: Recreate, image_op: Operation | None
    ) -> None:
        service = self.project.services[name]
        want = self.options.scale.get(name, service.replicas)
        wanted = service_hash(service, self.options.referenced_files)
        kept: dict[int, ObservedContainer] = {}
        for c in found:  # sorted by (number, name): the first claim on a number wins, every run
            if 1 <= c.number <= want and c.number not in kept:
                kept[c.number] = c
            else:
                duplicate = c.number in kept  # named by container: its replica name is taken
                self.removals.append(
                    _remove(c, "duplicate replica", c.name) if duplicate else _remove(c, f"scaled to {want}")
                )
        self.service_ops[name] = [
            self._replica(
                name=name,
                service=service,
                number=n,
                container=kept.get(n),
                wanted=wanted,
                policy=policy,
                image_op=image_op,
            )
            for n in range(1, want + 1)
        ]

    def _replica(
        self,
        *,
        name: str,
        service: Service,
        number: int,
        container: ObservedContainer | None,
        wanted: ServiceHash,
        policy: Recreate,
        image_op: Operation | None,
    ) -> Operation:
        op = partial(self._op, name=name, service=service, number=number, container=container, wanted=wanted)
        if container is None:
            return op(OpKind.CREATE, "not found", spec=True)
        changes = self._changes(service, container, wanted)
        if image_op is not None and policy is not Recreate.NEVER:
            verb = "rebuilt" if image_op.kind is OpKind.BUILD else "pulled"
            changes = (*changes, Change("image", note=f"will be {verb}"))
        if policy is Recreate.FORCE or (policy is Recreate.DIVERGED and changes):
            forced = policy is Recreate.FORCE and not changes
            return op(OpKind.RECREATE, "forced" if forced else "", changes, spec=True)
        kept = "changes kept: --no-recreate" if changes else ""
        if not changes and container.exit_code == 0 and is_job(self.project, name):
            return op(OpKind.NOTHING, "completed")  # a finished job is at its target: not re-run
        if not container.running:
            return op(OpKind.START, "; ".join(filter(None, [f"{container.state}", kept])), changes)
        return op(OpKind.NOTHING, kept or "up to date", changes)

    def _op(
        self,
        kind: OpKind,
        cause: str = "",
        changes: tuple[Change, ...] = (),
        spec: bool = False,
        *,
        name: str,
        service: Service,
        number: int,
        container: ObservedContainer | None,
        wanted: ServiceHash,
    ) -> Operation:
        return Operation(
            kind,
            ResourceKind.SERVICE,
            f"{name}-{number}",
            cause=cause,
            changes=changes,
            service=name,
            number=number,
            container=container.id if container is not None else None,
            spec=self._spec(name, service, number, wanted) if spec else None,
        )

    def _changes(
        self, service: Service, container: ObservedContainer, wanted: ServiceHash
    ) -> tuple[Change, ...]:
        """Why `container` differs from `wanted`: field changes, then a changed image ID."""
        out: list[Change] = []
        if container.spec is not None:  # made by another tool: compare what it runs (adoption.py)
            spec = self._spec(container.service, service, container.number, wanted)
            out.extend(adopted_changes(container.spec, spec))
        elif not wanted.matches(container.config_hash, container.components, container.config):
            found = diff_components(container.components, wanted.components, container.config, wanted.config)
            out.extend(found or [Change("config", note="changed (no recorded components to compare)")])
        # Docker shows a container's image as its ID once the tag moved on (a rebuild): then
        # the tag to compare with is the one the service runs
        shown = container.image or ""
        wanted_ref = image_ref(self.project, container.service, service)
        ref = shown if shown and not shown.startswith("sha256:") else wanted_ref
        local = local_image(self.observed.images, ref)
        if local is not None and container.image_id is not None and local != container.image_id:
            out.append(Change("image id", container.image_id[:_SHORT_ID], local[:_SHORT_ID]))
        return tuple(out)

    def _spec(self, name: str, service: Service, number: int, wanted: ServiceHash) -> ContainerSpec:
        deps = ",".join(
            f"{dep}:{d.condition}:{str(d.restart).lower()}" for dep, d in sorted(service.depends_on.items())
        )
        labels = {
            lbl.PROJECT: self.project.name,
            lbl.SERVICE: name,
            lbl.CONTAINER_NUMBER: str(number),
            lbl.ONEOFF: "False",
            lbl.DEPENDS_ON: deps,
            lbl.WORKING_DIR: self.options.working_dir,
            lbl.CONFIG_FILES: ",".join(self.options.config_files),
            lbl.VERSION: __version__,
            **wanted.labels(),
        }
        return container_spec(
            self.project, name, service, number, labels=labels, referenced_files=self.options.referenced_files
        )

    # -- restarts and orphans ---------------------------------------------------------------------

    def _propagate_restarts(self, containers: dict[str, list[ObservedContainer]]) -> None:
        """`depends_on.restart: true`: a recreated (or restarted) dependency restarts the dependent.

        Walks dependencies first so a restart propagates transitively (db -> api -> web). Running
        dependents outside the selection are restarted too: they hold connections to the old one.
        """
        updated = {
            name for name, ops in self.service_ops.items() if any(o.kind is OpKind.RECREATE for o in ops)
        }
        for name in self.order:
            joined = {
                ref.service for ref in implicit_refs_of(self.project.services[name])
                if ref.key in NAMESPACE_KEYS and ref.service in updated
            }
            if joined:  # a restart would try to join a namespace that went with the old container
                self._plan_service(name, containers.get(name, []), Recreate.FORCE, None)
                cause = f"joins the namespace of {', '.join(sorted(joined))}, which is recreated"
                replanned = self.service_ops[name]
                for i, o in enumerate(replanned):
                    if o.kind is OpKind.RECREATE:
                        replanned[i] = replace(o, cause=cause)
                updated.add(name)
                continue
            reasons = [
                dep
                for dep in sorted(self.deps[name])
                if dep in updated and self.deps[name][dep].restart
            ]
            if not reasons:
                continue
            cause = f"dependency {', '.join(reasons)} " + ("updated" if len(reasons) > 1 else "recreated")
            ops = self.service_ops.get(name)
            if ops is None:
                running = [c for c in containers.get(name, []) if c.running]
                ops = [_restart_existing(c, cause) for c in running]
                if not ops:
                    continue
                self.service_ops[name] = ops
            else:
                ops[:] = [_restarted(o, cause) if o.kind is OpKind.NOTHING else o for o in ops]
            updated.add(name)

    def _plan_orphans(self, containers: dict[str, list[ObservedContainer]]) -> None:
        for name in sorted(containers):
            if name in self.project.services or name in self.options.disabled_services:
                continue
            for c in containers[name]:
                if self.options.remove_orphans:
                    self.removals.append(_remove(c, "orphan"))
                else:
                    self.warnings.append(
                        f"orphan container {c.name} (service {name} is not in the project;"
                        " --remove-orphans removes it)"
                    )

    def _dependency_edges(self) -> list[tuple[str, str, dict[str, Wait]]]:
        """Edge from every replica of a dependency to every replica of its dependent, with the wait."""
        edges: list[tuple[str, str, dict[str, Wait]]] = []
        waits: dict[tuple[DependsCondition, bool], dict[str, Wait]] = {}
        for dependent, edges_of in self.deps.items():
            after = self.service_ops.get(dependent, ())
            for dependency, edge in edges_of.items():
                before = self.service_ops.get(dependency, ())
                if before and after:
                    key = (edge.condition, edge.required)
                    attrs = waits.get(key) or waits.setdefault(key, {"wait": Wait(*key)})
                    edges.extend((a.id, b.id, attrs) for a in before for b in after)
        return edges


def _remove(c: ObservedContainer, cause: str, name: str | None = None) -> Operation:
    return Operation(
        OpKind.REMOVE,
        ResourceKind.SERVICE,
        name or (f"{c.service}-{c.number}" if c.number > 0 else c.name),
        cause=cause,
        service=c.service,
        number=c.number,
        container=c.id,
    )


def _restart_existing(c: ObservedContainer, cause: str) -> Operation:
    return Operation(
        OpKind.RESTART,
        ResourceKind.SERVICE,
        f"{c.service}-{c.number}",
        cause=cause,
        service=c.service,
        number=c.number,
        container=c.id,
    )


def _restarted(op: Operation, cause: str) -> Operation:
    return replace(op, kind=OpKind.RESTART, cause=cause, changes=())
