"""A container's network, as the container manager needs it: which namespace, which addresses,
which published ports, decided and made at create time.

The network manager (`networks.py`) pulls in pyroute2 and dnspython, about 33 MiB of resident
memory, so `LazyNetworks` imports and opens it on first use: an engine that only ever runs
containers without networks stays small. Everything here runs under the container's lock, with
the container's record already written (`creating`), so a crash at any point leaves a row that
re-adoption tears down; `disconnect` is record-driven and idempotent on the network side.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from stackup.errors import NotFound, PlanError, RuntimeFailure
from stackup.net.firewall import Proto
from stackup.net.ports import PortRequest as HostPortRequest
from stackup.net.ports import check_host_ports
from stackup.runtime import labels
from stackup.runtime.engine.containers.config import ContainerConfig, NetworkMode
from stackup.runtime.engine.network.ports import clash, describe
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.wire.models import ContainerCreate, HostEntry, PortRequest
from stackup.runtime.wire.network import Attachment, NetnsInfo, PortBinding
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import (
    ContainerEndpoint,
    ContainerNetwork,
    ContainerRecord,
    PublishedPort,
)

if TYPE_CHECKING:
    from stackup.runtime.engine.network.manager import NetworkManager


class LazyNetworks:
    """The engine's `NetworkManager`, imported and opened the first time anything needs it."""

    def __init__(self, paths: EnginePaths, state: StateStore) -> None:
        self._paths = paths
        self._state = state
        self._manager: NetworkManager | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._manager is not None

    def get(self) -> NetworkManager:
        with self._lock:
            if self._manager is None:
                from stackup.runtime.engine.network.manager import NetworkManager

                self._manager = NetworkManager(self._paths, self._state)
            return self._manager

    def restore(self, live_containers: Sequence[str], owners: Sequence[str]) -> None:
        """On engine start: bring bridges, namespaces, firewall and DNS back from the records.

        Skipped (and nothing imported) when no network exists and no container owns a namespace.
        """
        if self._state.list_networks() or owners:
            self.get().restore(live_containers=live_containers)

    def close(self) -> None:
        with self._lock:
            if self._manager is not None:
                self._manager.close()
                self._manager = None


def _owns_netns(record: ContainerRecord) -> bool:
    return record.network is not None and record.network.owns_netns


def needs_disconnect(networks: LazyNetworks, record: ContainerRecord) -> bool:
    """Whether tearing `record` down has network state to release (without loading the manager
    for a container that never had any)."""
    return networks.loaded or _owns_netns(record)


def service_of(request: ContainerCreate) -> str:
    """How errors name the container: its Compose service when it has one, else its name."""
    return request.labels.get(labels.SERVICE) or request.name


def port_bindings(ports: Sequence[PortRequest]) -> list[PortBinding]:
    """Wire requests as the network manager's bindings; `""` and `0.0.0.0` mean every address."""
    out: list[PortBinding] = []
    for port in ports:
        try:
            host_ip = None if port.host_ip in ("", "0.0.0.0") else IPv4Address(port.host_ip)
        except ValueError:
            raise PlanError(
                f"published port {port.container_port}: host_ip {port.host_ip!r} is not IPv4"
            ) from None
        out.append(
            PortBinding(
                host_ip=host_ip,
                host_port=port.host_port,
                container_port=port.container_port,
                proto=Proto(port.protocol),
            )
        )
    return out


def check_ports(
    networks: LazyNetworks, state: StateStore, service: str, ports: Sequence[PortBinding]
) -> None:
    """Refuse, before anything is made, host ports another container of this engine publishes or
    a host process holds, naming the service and each holder (container name, or process)."""
    fixed = [p for p in ports if p.host_port is not None]
    if not fixed:
        return
    problems: list[str] = []
    published = networks.get().published() if networks.loaded or state.list_networks() else []
    for binding in fixed:
        assert binding.host_port is not None
        for other in published:
            if clash(binding.host_ip, binding.host_port, binding.proto, other):
                try:
                    holder = state.get_container(other.container_id).name
                except NotFound:
                    holder = other.container_id[:12]
                problems.append(f"port {describe(binding)} is published by container {holder}")
    requests = [HostPortRequest(host_ip=b.host_ip, port=b.host_port, proto=b.proto) for b in fixed]
    problems += [str(conflict) for conflict in check_host_ports(requests)]
    if problems:
        raise RuntimeFailure(f"service {service}: cannot publish ports: " + "; ".join(problems))


def dns_names(request: ContainerCreate, config: ContainerConfig) -> list[str]:
    """Service label, container name and hostname: the names every network resolves it by."""
    names = (request.labels.get(labels.SERVICE), request.name, request.hostname)
    return list(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class Wired:
    """A network decision: the container's config with its namespace, and what to record."""

    config: ContainerConfig
    network: ContainerNetwork


def connect(
    manager: NetworkManager, container_id: str, request: ContainerCreate, config: ContainerConfig
) -> Wired:
    """Make the namespace, plug it into the requested networks, publish the ports.

    The caller must `disconnect` on failure: `connect` rolls itself back, but a failed
    `publish` leaves the (recorded) endpoints for the caller's teardown.
    """
    names = dns_names(request, config)
    attachments = [
        Attachment(network=n.network, aliases=n.aliases, ipv4_address=n.ipv4_address)
        for n in request.networks
    ]
    info = manager.connect(
        container_id,
        attachments,
        names,
        hostname=config.effective_hostname,
        dns=config.dns,
        dns_search=config.dns_search,
        dns_options=config.dns_options,
    )
    wired = _with_netns(config, info)
    bindings = manager.publish(container_id, port_bindings(request.ports))
    endpoints = tuple(
        ContainerEndpoint(
            network=e.network, address=str(e.address), names=tuple(dict.fromkeys((*names, *a.aliases)))
        )
        for e, a in zip(info.endpoints, attachments, strict=True)
    )
    ports = tuple(
        PublishedPort(
            container_port=b.container_port,
            host_port=b.host_port or 0,
            host_ip="" if b.host_ip is None else str(b.host_ip),
            protocol=b.proto.value,
        )
        for b in bindings
    )
    return Wired(wired, ContainerNetwork(mode="bridge", owns_netns=True, endpoints=endpoints, ports=ports))


def _with_netns(config: ContainerConfig, info: NetnsInfo) -> ContainerConfig:
    hosts = tuple(HostEntry(hostname=h.hostname, address=str(h.address)) for h in info.hosts)
    return config.model_copy(
        update={
            "network_mode": NetworkMode.PATH,
            "netns_path": info.path,
            "dns": info.nameservers,
            "dns_search": info.search,
            "dns_options": info.options,
            "extra_hosts": config.extra_hosts + hosts,
        }
    )


def join(target: ContainerRecord, request: ContainerCreate, config: ContainerConfig) -> Wired:
    """`container:<ref>`: share the target's namespace and, as Docker does, its hostname and
    resolver files; the namespace stays the target's (it is deleted with the target)."""
    if request.ports:
        raise PlanError(f"service {service_of(request)}: network_mode container cannot publish ports")
    theirs = ContainerConfig.model_validate(target.config)
    if theirs.network_mode is NetworkMode.NONE:
        raise RuntimeFailure(
            f"service {service_of(request)}: container {target.name} has no network namespace to share "
            "(it runs with network_mode none)"
        )
    shared = config.model_copy(
        update={
            "network_mode": theirs.network_mode,
            "netns_path": theirs.netns_path,
            "hostname": theirs.effective_hostname,
            "dns": theirs.dns,
            "dns_search": theirs.dns_search,
            "dns_options": theirs.dns_options,
            "extra_hosts": theirs.extra_hosts,
        }
    )
    endpoints = target.network.endpoints if target.network is not None else ()
    return Wired(shared, ContainerNetwork(mode=f"container:{target.id}", endpoints=endpoints))


def unwired(request: ContainerCreate) -> ContainerNetwork | None:
    """What to record before any wiring: None when a namespace is to be made or joined (the
    wiring records it), else the whole story (`none`, `host`, `bridge` without networks).

    Ports are discarded with `host` and `none`, as Docker does (there is nothing to translate
    to); with `bridge` and no network they mean the client forgot the network, which is refused,
    as are networks listed with any mode but `bridge`.
    """
    service = service_of(request)
    if request.networks and request.network_mode != "bridge":
        raise PlanError(
            f"service {service}: networks cannot be joined with network_mode {request.network_mode}"
        )
    if request.networks or request.network_mode.startswith("container:"):
        return None
    if request.ports and request.network_mode == "bridge":
        raise PlanError(f"service {service}: published ports need a network to publish from")
    return ContainerNetwork(mode=request.network_mode)


def base_mode(request: ContainerCreate) -> NetworkMode:
    """The config's mode before any namespace exists (`path` is filled in by `connect`/`join`)."""
    return NetworkMode.HOST if request.network_mode == "host" else NetworkMode.NONE
