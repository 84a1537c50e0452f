"""Pass: cross references, on the validated model (after profiles have been applied).

Things no single key can get wrong on its own: a `depends_on` naming a service that does not
exist (or one a profile disabled), a network/volume/secret/config used but never declared, two
services publishing the same host port, a dependency cycle. They run on the typed `Project`
because by then short syntax is gone: `8080:80` and `{published: 8080, target: 80}` are the same
`PortSpec`. Every problem is collected, each at the key that caused it, so one run lists them all
(compose-go's `checkConsistency` stops at the first).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from stackup.spec.cycles import find_cycles
from stackup.spec.errors import (
    DependencyCycle,
    KeyPath,
    ProblemCollector,
    SourceMap,
    SpecError,
)
from stackup.spec.implicit import implicit_refs_of
from stackup.spec.models import PortSpec, Project, Service, VolumeType
from stackup.spec.profiles import describe_disabled
from stackup.text import did_you_mean

IMPLICIT_NETWORKS = frozenset({"default"})
"""Networks a service may name without declaring them (Compose creates `default` itself)."""

_WILDCARD_IPS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class Edge:
    """A dependency of `source` on `target`, written at `path`."""

    source: str
    target: str
    path: KeyPath


def service_edges(name: str, service: Service) -> Iterator[Edge]:
    """Every reference from a service to another one: depends_on and the implicit ones.

    `links`, `network_mode|ipc|pid|...: service:x` and `volumes_from` all need `x` to exist and to
    start first, so compose-go folds them into depends_on; they are checked the same way here.
    """
    base: KeyPath = ("services", name)
    seen: set[str] = set()
    for edge in _implicit_edges(name, service, base):
        if edge.target not in seen:
            seen.add(edge.target)
            yield edge
    for target in service.depends_on:
        if target not in seen:
            yield Edge(name, target, (*base, "depends_on", target))


def _implicit_edges(name: str, service: Service, base: KeyPath) -> Iterator[Edge]:
    """Normalisation copies these into depends_on too; they are reported where they were written."""
    for ref in implicit_refs_of(service):
        where = (*base, ref.key) if ref.index is None else (*base, ref.key, ref.index)
        yield Edge(name, ref.service, where)


class _Checker:
    def __init__(self, project: Project, collector: ProblemCollector,
                 disabled: Mapping[str, tuple[str, ...]]) -> None:
        self.project = project
        self.collector = collector
        self.disabled = disabled

    def unknown(self, path: KeyPath, kind: str, name: str, known: list[str]) -> None:
        self.collector.add(path, f"undefined {kind} {name!r}", hint=did_you_mean(name, known))

    def service_refs(self) -> None:
        names = [*self.project.services, *self.disabled]
        for name, service in self.project.services.items():
            for edge in service_edges(name, service):
                if edge.target in self.project.services:
                    continue
                if edge.target in self.disabled:
                    reason = describe_disabled(edge.target, self.disabled[edge.target])
                    self.collector.add(edge.path, f"depends on {reason}")
                else:
                    self.unknown(edge.path, "service", edge.target, names)

    def resource_refs(self) -> None:
        p = self.project
        networks = [*p.networks, *IMPLICIT_NETWORKS]
        for name, service in p.services.items():
            base: KeyPath = ("services", name)
            for net in service.networks:
                if net not in networks:
                    self.unknown((*base, "networks", net), "network", net, list(p.networks))
            for index, volume in enumerate(service.volumes):
                if volume.type is VolumeType.VOLUME and volume.source and volume.source not in p.volumes:
                    self.unknown((*base, "volumes", index), "volume", volume.source, list(p.volumes))
            for index, ref in enumerate(service.secrets):
                if ref.source not in p.secrets:
                    self.unknown((*base, "secrets", index), "secret", ref.source, list(p.secrets))
            for index, ref in enumerate(service.configs):
                if ref.source not in p.configs:
                    self.unknown((*base, "configs", index), "config", ref.source, list(p.configs))

    def ports(self) -> None:
        """Two bindings of one host port/protocol on overlapping addresses cannot both succeed."""
        taken: dict[tuple[int, str], list[tuple[str, str, KeyPath]]] = {}
        for name, service in self.project.services.items():
            replicas = _replicas(service)
            for index, port in enumerate(service.ports):
                path: KeyPath = ("services", name, "ports", index)
                host_ports = _published(port)
                if host_ports is None:
                    self.collector.add(path, f"invalid published port {port.published!r}")
                    continue
                if not host_ports:
                    continue
                if replicas > len(host_ports):
                    self.collector.add(path, f"{replicas} replicas cannot share {len(host_ports)} host "
                                             f"port(s) {port.published}; publish a range or drop the "
                                             f"host port")
                ip = port.host_ip or ""
                for host_port in host_ports:
                    bucket = taken.setdefault((host_port, port.protocol.value), [])
                    clash = next((c for c in bucket if _overlap(c[1], ip)), None)
                    if clash is not None:
                        where = self.collector.source_map.locate(clash[2])
                        at = f" ({where})" if where else ""
                        self.collector.add(path, f"host port {host_port}/{port.protocol.value} is already "
                                                 f"published by service {clash[0]!r}{at}")
                        break
                    bucket.append((name, ip, path))

    def cycles(self, source_map: SourceMap) -> list[list[str]]:
        """One cycle per strongly connected component (`spec.cycles`), each reported with the
        place of every hop."""
        paths: dict[tuple[str, str], KeyPath] = {}
        for name in sorted(self.project.services):
            for edge in service_edges(name, self.project.services[name]):
                if edge.target in self.project.services:
                    paths.setdefault((edge.source, edge.target), edge.path)
        found = find_cycles(self.project.services, paths)
        for cycle in found:
            ring = [*cycle, cycle[0]]
            steps = []
            for u, v in itertools.pairwise(ring):
                where = source_map.locate(paths[(u, v)])
                steps.append(f"{u} -> {v} at {where}" if where else f"{u} -> {v}")
            self.collector.add(paths[(ring[0], ring[1])],
                               f"dependency cycle: {' -> '.join(ring)} ({'; '.join(steps)})",
                               hint="remove one of these dependencies")
        return found


def _replicas(service: Service) -> int:
    if service.scale is not None:
        return service.scale
    if service.deploy is not None and service.deploy.replicas is not None:
        return service.deploy.replicas
    return 1


def _published(port: PortSpec) -> list[int] | None:
    """Host ports of `published` (`8080`, `8000-8010`); [] when the engine picks one."""
    text = (port.published or "").strip()
    if not text or text == "0":
        return []
    low, sep, high = text.partition("-")
    try:
        first, last = int(low), int(high) if sep else int(low)
    except ValueError:
        return None
    if not 0 < first <= last <= 65535:
        return None
    return list(range(first, last + 1))


def _overlap(a: str, b: str) -> bool:
    """Whether two host IPs can clash: equal, or one is a wildcard of a matching family."""
    if a == b:
        return True
    if a in _WILDCARD_IPS or b in _WILDCARD_IPS:
        wild, other = (a, b) if a in _WILDCARD_IPS else (b, a)
        if wild == "":
            return True
        try:
            return ipaddress.ip_address(wild).version == ipaddress.ip_address(other).version
        except ValueError:
            return True
    return False


def check_references(project: Project, source_map: SourceMap, collector: ProblemCollector,
                     disabled: Mapping[str, tuple[str, ...]] | None = None) -> list[list[str]]:
    """Report every cross-reference problem into `collector`; returns the dependency cycles."""
    checker = _Checker(project, collector, disabled or {})
    checker.service_refs()
    checker.resource_refs()
    checker.ports()
    return checker.cycles(source_map)


def verify_references(project: Project, source_map: SourceMap,
                      disabled: Mapping[str, tuple[str, ...]] | None = None) -> None:
    """`check_references`, raising `DependencyCycle` (if any cycle) or `SpecError` with all problems."""
    collector = ProblemCollector(source_map)
    cycles = check_references(project, source_map, collector, disabled)
    raise_collected(collector, cycles)


def raise_collected(collector: ProblemCollector, cycles: list[list[str]]) -> None:
    """End the load: a `DependencyCycle` when a cycle is among the problems, else `SpecError`."""
    if cycles:
        raise DependencyCycle(cycles[0], collector.problems)
    if collector.problems:
        raise SpecError(collector.problems)


def raw_dependency_problems(tree: Mapping[str, Any], collector: ProblemCollector) -> None:
    """Unknown `depends_on` targets, read from the normalised tree when the model did not validate.

    Validation errors stop the typed checks, but a user fixing a misspelt key should still hear,
    in the same report, that `depends_on` names a service that does not exist.
    """
    services = tree.get("services")
    if not isinstance(services, Mapping):
        return
    names = [str(n) for n in services]
    for name, service in services.items():
        deps = service.get("depends_on") if isinstance(service, Mapping) else None
        for target in deps if isinstance(deps, Mapping) else ():
            if target not in services:
                path: KeyPath = ("services", str(name), "depends_on", str(target))
                collector.add(path, f"undefined service {target!r}", hint=did_you_mean(str(target), names))
