"""Between the builder's `ImageConfig` (stackup.build) and the store's wire `ImageConfig`.

A base image's config enters the build graph (its env is visible to substitution, its cmd,
user, workdir and labels are inherited), and the target stage's folded config leaves as the
image's `config`, with the request's labels laid over the Dockerfile's (as `docker build
--label` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackup import keyvalue
from stackup.build.dockerfile.ast import Node
from stackup.build.dockerfile.instructions import Healthcheck
from stackup.build.imageconfig import ImageConfig as BuildConfig
from stackup.runtime.wire.imageconfig import HealthConfig
from stackup.runtime.wire.imageconfig import ImageConfig as WireConfig

__all__ = ["BuildConfig", "from_wire", "to_wire"]

_NO_NODE = Node(keyword="healthcheck", original="HEALTHCHECK (from the base image)")


def from_wire(config: WireConfig, raw: Mapping[str, Any] | None = None) -> BuildConfig:
    """The builder's view of a base image's config; `raw` (the config blob's `config` object)
    adds what the wire model leaves out: the ONBUILD triggers a child build runs."""
    health = None
    if config.healthcheck is not None and config.healthcheck.test:
        h = config.healthcheck
        health = Healthcheck(
            _NO_NODE,
            test=tuple(h.test),
            interval_ns=h.interval,
            timeout_ns=h.timeout,
            start_period_ns=h.start_period,
            start_interval_ns=h.start_interval,
            retries=h.retries,
        )
    return BuildConfig(
        env=tuple(keyvalue.to_dict(config.env).items()),
        user=config.user,
        workdir=config.working_dir,
        cmd=config.cmd,
        entrypoint=config.entrypoint,
        labels=tuple(config.labels.items()),
        exposed_ports=config.exposed_ports,
        volumes=config.volumes,
        stop_signal=config.stop_signal or "",
        healthcheck=health,
        onbuild=tuple(str(t) for t in ((raw or {}).get("OnBuild") or ())),
    )


def to_wire(config: BuildConfig, labels: Mapping[str, str]) -> dict[str, Any]:
    health = None
    if config.healthcheck is not None:
        h = config.healthcheck
        health = HealthConfig(
            test=h.test,
            interval=h.interval_ns,
            timeout=h.timeout_ns,
            start_period=h.start_period_ns,
            start_interval=h.start_interval_ns,
            retries=h.retries,
        )
    env = dict(config.env)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    wire = WireConfig(
        env=tuple(f"{k}={v}" for k, v in env.items()),
        cmd=config.cmd,
        entrypoint=config.entrypoint,
        working_dir=config.workdir,
        user=config.user,
        exposed_ports=config.exposed_ports,
        volumes=config.volumes,
        labels={**dict(config.labels), **labels},
        stop_signal=config.stop_signal or None,
        healthcheck=health,
    )
    out = wire.to_wire()
    if config.onbuild:
        out["OnBuild"] = list(config.onbuild)
    return out
