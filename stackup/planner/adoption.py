"""Does a container another tool made (Docker Compose) still match the stack file?

stackup's own containers record their canonical config in labels; a container Compose made
records Compose's hash, which stackup cannot reproduce. For those, the runtime reads the
container back as a `ContainerSpec` (`ContainerInfo.spec`) and this module compares it with the
spec `reconcile` would create, field by field, so an equivalent stack is adopted with no changes
and a different one is explained as precisely as a stackup container would be.

Not compared, because Compose does not record them on the container (so they can never be read
back): the container name (Compose 1.x names replicas `<project>_<service>_<n>`, stackup
`<project>-<service>-<n>`; a name is not configuration), `stop_grace_period` (Compose 1.29 passes
it to each stop instead of setting the container's StopTimeout) and `post_start` / `pre_stop`
hooks (not a container setting). Labels under stackup's and Compose's own prefixes are
bookkeeping, not configuration.
"""

from __future__ import annotations

from typing import Any

from stackup.planner.changes import Change, diff_values
from stackup.runtime import labels as lbl
from stackup.runtime.base import ContainerSpec, HealthcheckSpec

_OWN_PREFIXES = (f"{lbl.PREFIX}.", f"{lbl.COMPOSE_PREFIX}.")


def _healthcheck(check: HealthcheckSpec | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "test": list(check.test),
        "interval": check.interval_s,
        "timeout": check.timeout_s,
        "retries": check.retries,
        "start_period": check.start_period_s,
    }


def comparable(spec: ContainerSpec) -> dict[str, Any]:
    """The spec as JSON values, order-free where order means nothing (mounts by target, sorted
    sets of aliases, capabilities, ports), with the fields above left out."""
    return {
        "image": spec.image,
        "labels": {k: v for k, v in sorted(spec.labels.items()) if not k.startswith(_OWN_PREFIXES)},
        "command": list(spec.command) if spec.command is not None else None,
        "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "environment": dict(sorted(spec.environment.items())),
        "working_dir": spec.working_dir or None,
        "user": spec.user or None,
        "hostname": spec.hostname or None,
        "volumes": [
            {"type": str(m.type), "target": m.target, "source": m.source, "read_only": m.read_only}
            for m in sorted(spec.mounts, key=lambda m: m.target)
        ],
        "ports": sorted(
            f"{p.host_ip}:{p.host_port or ''}:{p.container_port}/{p.protocol}" for p in spec.ports
        ),
        "networks": {
            a.network: {
                "aliases": sorted(set(a.aliases)),
                "ipv4_address": a.ipv4_address,
                "ipv6_address": a.ipv6_address,
            }
            for a in spec.networks
        },
        "network_mode": spec.network_mode,
        "limits": {"memory": spec.limits.memory_bytes, "cpus": spec.limits.cpus, "pids": spec.limits.pids},
        "healthcheck": _healthcheck(spec.healthcheck),
        "restart": spec.restart,
        "init": spec.init,
        "tty": spec.tty,
        "stdin_open": spec.stdin_open,
        "read_only": spec.read_only,
        "privileged": spec.privileged,
        "cap_add": sorted(spec.cap_add),
        "cap_drop": sorted(spec.cap_drop),
        "stop_signal": spec.stop_signal,
        "extra_hosts": sorted(spec.extra_hosts),
        "dns": list(spec.dns),
        "sysctls": dict(sorted(spec.sysctls.items())),
    }


def adopted_changes(found: ContainerSpec, wanted: ContainerSpec) -> list[Change]:
    """Field-level differences between a read-back container and the wanted spec (empty: adopt)."""
    return diff_values(comparable(found), comparable(wanted))
