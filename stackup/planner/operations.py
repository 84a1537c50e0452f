"""One plan operation -> runtime calls. A dispatch on `OpKind`, nothing more.

Returns the container ID the operation leaves behind (for condition gates), or None. A `create`
in an `up` plan also starts the container: the plan's unit is "this replica, running".
"""

from __future__ import annotations

from typing import assert_never

from stackup.planner.plan import Operation, OpKind, ResourceKind
from stackup.runtime.base import (
    BuildProgress,
    BuildSpec,
    ContainerSpec,
    NetworkSpec,
    PullSpec,
    Runtime,
    VolumeSpec,
)


def run_operation(op: Operation, runtime: Runtime, progress: BuildProgress | None = None) -> str | None:
    """`progress` receives a build's progress lines."""
    match op.kind:
        case OpKind.CREATE:
            return _create(op, runtime)
        case OpKind.RECREATE:
            old = _container(op)
            runtime.stop_container(old)
            runtime.remove_container(old)
            return _create(op, runtime)
        case OpKind.START:
            runtime.start_container(_container(op))
            return op.container
        case OpKind.RESTART:
            runtime.stop_container(_container(op))
            runtime.start_container(_container(op))
            return op.container
        case OpKind.STOP:
            runtime.stop_container(_container(op))
            return op.container
        case OpKind.REMOVE:
            _remove(op, runtime)
            return None
        case OpKind.PULL:
            platform = op.spec.platform if isinstance(op.spec, PullSpec) else None
            runtime.pull_image(op.name, platform=platform)
            return None
        case OpKind.BUILD:
            assert isinstance(op.spec, BuildSpec), op.id
            runtime.build_image(op.spec, progress)
            return None
        case OpKind.NOTHING:
            return op.container
        case _:
            assert_never(op.kind)


def _create(op: Operation, runtime: Runtime) -> str | None:
    match op.spec:
        case ContainerSpec() as spec:
            info = runtime.create_container(spec)
            runtime.start_container(info.id)
            return info.id
        case NetworkSpec() as spec:
            runtime.create_network(spec)
        case VolumeSpec() as spec:
            runtime.create_volume(spec)
        case BuildSpec() | PullSpec() | None:
            raise AssertionError(f"{op.id}: create without a container, network or volume spec")
        case _:
            assert_never(op.spec)
    return None


def _remove(op: Operation, runtime: Runtime) -> None:
    match op.resource:
        case ResourceKind.SERVICE:
            runtime.stop_container(_container(op))
            runtime.remove_container(_container(op))
        case ResourceKind.NETWORK:
            runtime.remove_network(op.name)
        case ResourceKind.VOLUME:
            runtime.remove_volume(op.name)
        case ResourceKind.IMAGE:
            runtime.remove_image(op.name)
        case _:
            assert_never(op.resource)


def _container(op: Operation) -> str:
    assert op.container is not None, f"{op.id}: no container to act on"
    return op.container
