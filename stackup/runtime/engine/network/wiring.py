"""Plugging one container's namespace into networks, and unplugging it, from records.

The order is what makes this crash-safe: the namespace path is derived from the container id,
the lease and the endpoint row (with the host veth's deterministic name) are written before the
veth exists, so undoing any prefix of `connect` -- after an exception or after the engine died
-- needs only the rows. `replug` is the same wiring done again from the rows, for a namespace or
veth that vanished (a reboot drops every namespace's bind mount).

Not thread-safe on its own: the network manager calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from stackup.errors import PlanError, RuntimeFailure
from stackup.net import bridge, netns
from stackup.net import names as ifnames
from stackup.net.ipam import Ipam, Leases
from stackup.runtime.engine.network.state import NetStore, ready_config
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.wire.network import (
    Attachment,
    Endpoint,
    EndpointInfo,
    HostLine,
    NetnsInfo,
    NetworkConfig,
)
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import IpLease


class Wiring:
    """Container endpoints of one engine root."""

    def __init__(self, paths: EnginePaths, state: StateStore, store: NetStore, tag: str) -> None:
        self._paths = paths
        self._state = state
        self._store = store
        self._tag = tag

    def netns_path(self, container_id: str) -> Path:
        self._paths.container(container_id)  # validates the id as a plain name
        return netns.netns_dir(self._paths.root) / container_id

    def ipam(self, network: str, config: NetworkConfig) -> Ipam:
        """The network's allocator as the records say it is now (leases and the last address)."""
        taken = frozenset(IPv4Address(address) for address in self._state.leased_addresses(network))
        leases = Leases.model_validate({"addresses": taken, "last": self._store.cursor(network)})
        return Ipam(config.subnet, config.gateway, config.ip_range, leases=leases)

    def connect(self, container_id: str, wanted: Sequence[Attachment], names: Sequence[str]) -> None:
        """Check everything that can be refused, then make the namespace and one veth per network."""
        endpoints = self.reserve(container_id, wanted, names)
        try:
            self.build(container_id, endpoints)
        except BaseException:
            self.disconnect(container_id)
            raise

    def reserve(
        self, container_id: str, wanted: Sequence[Attachment], names: Sequence[str]
    ) -> list[Endpoint]:
        """The bookkeeping half of `connect`: validate, lease addresses, record the endpoints.

        Only this half needs the network manager's lock (addresses must not be handed out
        twice); `build`, the kernel half, runs outside it so containers are wired in parallel.
        Records come first, so a crash at any later point leaves what `disconnect` needs.
        """
        if not wanted:
            raise PlanError(f"container {container_id[:12]}: no network to connect to")
        if len({a.network for a in wanted}) != len(wanted):
            raise PlanError(f"container {container_id[:12]}: a network is listed twice")
        if self._store.endpoints(container_id=container_id):
            raise RuntimeFailure(f"container {container_id[:12]} is already connected")
        configs = {a.network: ready_config(self._state, a.network) for a in wanted}
        for attachment in wanted:
            if attachment.ipv4_address is not None:
                self.ipam(attachment.network, configs[attachment.network]).allocate(attachment.ipv4_address)
        try:
            return [
                self._lease(container_id, f"eth{index}", attachment, configs, names)
                for index, attachment in enumerate(wanted)
            ]
        except BaseException:
            self.release(container_id)
            raise

    def build(self, container_id: str, endpoints: Sequence[Endpoint]) -> None:
        """The kernel half of `connect`: the namespace, then one veth per recorded endpoint."""
        netns.create(self.netns_path(container_id))
        configs = {e.network: ready_config(self._state, e.network) for e in endpoints}
        for endpoint in endpoints:
            self._attach(endpoint, configs)

    def _lease(
        self,
        container_id: str,
        ifname: str,
        attachment: Attachment,
        configs: Mapping[str, NetworkConfig],
        names: Sequence[str],
    ) -> Endpoint:
        """Lease an address and record the endpoint (nothing is made on the machine yet)."""
        network = attachment.network
        address = self.ipam(network, configs[network]).allocate(attachment.ipv4_address)
        self._state.add_lease(IpLease(network=network, address=str(address), container_id=container_id))
        if attachment.ipv4_address is None:
            self._store.set_cursor(network, address)
        path = self.netns_path(container_id)
        endpoint = Endpoint(
            container_id=container_id,
            network=network,
            ifname=ifname,
            host_veth=ifnames.veth_name(f"{path}:{ifname}"),
            address=address,
            names=tuple(dict.fromkeys((*names, *attachment.aliases))),
            netns=path,
        )
        self._store.add_endpoint(endpoint)
        return endpoint

    def _attach(self, endpoint: Endpoint, configs: Mapping[str, NetworkConfig]) -> None:
        """Create the veth; the default route goes via the container's first non-internal network."""
        config = configs[endpoint.network]
        routed = next(
            (
                e.network
                for e in self._store.endpoints(container_id=endpoint.container_id)
                if not configs[e.network].internal
            ),
            None,
        )
        address = IPv4Interface((endpoint.address, config.subnet.prefixlen))
        gateway = config.gateway if routed == endpoint.network else None
        host = bridge.attach(
            endpoint.netns, config.bridge, endpoint.ifname, address, gateway, alias=self._tag
        )
        if host != endpoint.host_veth:  # the naming scheme changed under us: keep the record true
            self._store.add_endpoint(endpoint.model_copy(update={"host_veth": host}))

    def unplug(self, endpoint: Endpoint) -> None:
        bridge.detach(endpoint.host_veth)
        self._state.release_leases(endpoint.container_id, endpoint.network)
        self._store.drop_endpoint(endpoint.container_id, endpoint.network)

    def dismantle(self, container_id: str) -> None:
        """The kernel half of `disconnect` (veths, namespace); the records stay until `release`."""
        veths = [e.host_veth for e in self._store.endpoints(container_id=container_id)]
        bridge.unplug_namespace(self.netns_path(container_id), veths)

    def release(self, container_id: str) -> bool:
        """The bookkeeping half of `disconnect`: leases, endpoints, ports; True if there were ports."""
        for endpoint in self._store.endpoints(container_id=container_id):
            self._state.release_leases(endpoint.container_id, endpoint.network)
            self._store.drop_endpoint(endpoint.container_id, endpoint.network)
        self._state.release_leases(container_id)
        had_ports = bool(self._store.ports(container_id))
        self._store.set_ports(container_id, [])
        return had_ports

    def disconnect(self, container_id: str) -> bool:
        """Unplug everything, delete the namespace, drop published ports; True if there were ports."""
        self.dismantle(container_id)
        return self.release(container_id)

    def replug(self, container_id: str, links: set[str]) -> None:
        """Re-create what is gone of a container's wiring, with the recorded addresses."""
        endpoints = self._store.endpoints(container_id=container_id)
        path = self.netns_path(container_id)
        missing = [e for e in endpoints if e.host_veth not in links]
        if not netns.is_netns(path):
            netns.delete(path)
            netns.create(path)
            for endpoint in endpoints:
                if endpoint.host_veth in links:  # its peer went with the old namespace, and the
                    bridge.detach(endpoint.host_veth)  # kernel reaps such a half only later: a clash
            missing = endpoints
        configs = {e.network: ready_config(self._state, e.network) for e in endpoints}
        for endpoint in missing:
            self._attach(endpoint, configs)

    def info(
        self,
        container_id: str,
        hostname: str | None,
        dns: Sequence[str] = (),
        dns_search: Sequence[str] = (),
        dns_options: Sequence[str] = (),
    ) -> NetnsInfo:
        """The namespace and the /etc files' content for a connected container."""
        endpoints = self._store.endpoints(container_id=container_id)
        if not endpoints:
            raise RuntimeFailure(f"container {container_id[:12]} is not connected")
        configs = {e.network: ready_config(self._state, e.network) for e in endpoints}
        infos = tuple(
            EndpointInfo(
                network=e.network,
                ifname=e.ifname,
                address=e.address,
                prefixlen=configs[e.network].subnet.prefixlen,
                gateway=configs[e.network].gateway,
            )
            for e in endpoints
        )
        return NetnsInfo(
            path=self.netns_path(container_id),
            endpoints=infos,
            nameservers=tuple(dict.fromkeys((str(infos[0].gateway), *dns))),
            search=tuple(dns_search),
            options=tuple(dns_options),
            hosts=(HostLine(address=infos[0].address, hostname=hostname or container_id[:12]),),
        )
