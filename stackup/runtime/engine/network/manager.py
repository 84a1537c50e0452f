"""The engine's network manager: bridges, container namespaces, addresses, DNS, published ports.

It composes the kernel-facing pieces of `stackup.net` and owns their ordering. Every change is
recorded before it is made on the machine (a network is `creating` before its bridge exists, a
lease and an endpoint row exist before the veth), so `disconnect`, `remove_network` and `restore`
work from the records alone after a crash, and whatever has no record is found by `doctor`.

The firewall is one nftables table rewritten whole from the records after every change, and the
DNS server answers from a table rebuilt from the endpoint rows, so neither can drift from the
state. One lock serialises changes: they are short (a netlink request, one nft batch), and
addresses and host ports must not be handed out twice.
"""

from __future__ import annotations

import contextlib
import errno
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from stackup.errors import NotFound, PlanError, RuntimeFailure
from stackup.net import bridge, netns
from stackup.net import names as ifnames
from stackup.net.dns import Address, DnsEntry, DnsServer, DnsTable, host_resolvers
from stackup.net.firewall import Firewall, NetRule
from stackup.net.ipam import DEFAULT_POOLS, AddressPool, Ipam, check_overlaps, choose_subnet
from stackup.runtime.engine.network.doctor import Orphan, find_orphans, tag_link, tag_of
from stackup.runtime.engine.network.foreign import ForeignFilter
from stackup.runtime.engine.network.ports import as_binding, as_rule, plan_ports
from stackup.runtime.engine.network.state import NetStore, config_of, ready_config
from stackup.runtime.engine.network.wiring import Wiring
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.wire.network import (
    Attachment,
    NetnsInfo,
    NetworkConfig,
    NetworkDetails,
    PortBinding,
    PortRecord,
)
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import NetworkRecord, NetworkStatus

AttachmentLike = Attachment | tuple[str, Sequence[str], IPv4Address | str | None]



_PICK_ATTEMPTS = 3


def _address_taken(exc: BaseException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE

class NetworkManager:
    """Every network operation of one engine root; thread-safe."""

    def __init__(
        self,
        paths: EnginePaths,
        state: StateStore,
        *,
        pools: Sequence[AddressPool] = DEFAULT_POOLS,
        foreign: ForeignFilter | None = None,
        dns_port: int = 53,
    ) -> None:
        self.paths = paths
        self._state = state
        self._store = NetStore(paths.state_db)
        self._pools = tuple(pools)
        self._foreign = foreign if foreign is not None else ForeignFilter()
        self._firewall = Firewall(paths.root)
        self._tag = tag_of(self._firewall.table)
        self._dns_port = dns_port
        self._dns: DnsServer | None = None
        self._listening: dict[str, Address] = {}
        self._lock = threading.RLock()
        self._wiring = Wiring(paths, state, self._store, self._tag)

    def netns_path(self, container_id: str) -> Path:
        """Where a container's namespace is pinned; known before `connect`, for the OCI config."""
        return self._wiring.netns_path(container_id)

    def close(self) -> None:
        """Stop the DNS server and let go of the database; the kernel objects stay (containers
        outlive the engine, and `restore` picks them up again)."""
        with self._lock:
            if self._dns is not None:
                self._dns.stop()
                self._dns = None
                self._listening.clear()
            self._store.close()

    # -- networks ---------------------------------------------------------------------------

    def _find(self, name: str) -> NetworkRecord | None:
        with contextlib.suppress(NotFound):
            return self._state.get_network(name)
        return None

    def create_network(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        internal: bool = False,
        subnet: IPv4Network | str | None = None,
        gateway: IPv4Address | str | None = None,
        ip_range: IPv4Network | str | None = None,
        driver: str = "bridge",
    ) -> NetworkRecord:
        """Create a network, or return the ready one of that name if its settings agree."""
        if driver != "bridge":
            raise PlanError(f"network {name}: driver {driver!r} is not supported (only 'bridge')")
        want_subnet = None if subnet is None else IPv4Network(subnet)
        want_gateway = None if gateway is None else IPv4Address(gateway)
        want_range = None if ip_range is None else IPv4Network(ip_range)
        if want_subnet is None and (want_gateway is not None or want_range is not None):
            raise PlanError(f"network {name}: gateway and ip_range need an explicit subnet")
        with self._lock:
            existing = self._find(name)
            if existing is not None and existing.status is NetworkStatus.READY:
                current = config_of(existing)
                if current.internal != internal or want_subnet not in (None, current.subnet):
                    raise RuntimeFailure(f"network {name} exists with other settings ({current.subnet})")
                return existing
            if existing is not None:
                self._destroy(existing)  # a half-made or half-removed leftover of a crash
            for attempt in range(_PICK_ATTEMPTS):
                ipam = Ipam(self._pick_subnet(name, want_subnet), want_gateway, want_range)
                network_id = secrets.token_hex(16)
                config = NetworkConfig(
                    id=network_id,
                    bridge=ifnames.bridge_name(network_id),
                    subnet=ipam.subnet,
                    gateway=ipam.gateway,
                    ip_range=want_range,
                    internal=internal,
                )
                record = self._state.save_network(
                    NetworkRecord(name=name, labels=dict(labels or {}), config=config.model_dump(mode="json"))
                )
                try:
                    self._bring_up(name, config)
                    self._sync_firewall()
                except RuntimeFailure as exc:
                    self._destroy(record)
                    # Another engine on this machine took the same free subnet between our look at
                    # the host's routes and our bridge: its route is there now, so pick again.
                    if want_subnet is None and attempt + 1 < _PICK_ATTEMPTS and _address_taken(exc):
                        continue
                    raise
                except BaseException:
                    self._destroy(record)
                    raise
                return self._state.save_network(record.model_copy(update={"status": NetworkStatus.READY}))
            raise AssertionError("unreachable: the last attempt returns or raises")

    def _pick_subnet(self, name: str, wanted: IPv4Network | None) -> IPv4Network:
        """The pool's first free subnet, or the explicit one after checking it collides with nothing."""
        others = {r.name: config_of(r).subnet for r in self._state.list_networks() if r.name != name}
        routes = {route for route in bridge.host_routes() if route.prefixlen > 0}
        if wanted is None:
            return choose_subnet(self._pools, set(others.values()), routes)
        check_overlaps({**others, name: wanted})
        for route in sorted(routes):
            if wanted.overlaps(route):
                raise PlanError(f"network {name} subnet {wanted} overlaps the host route {route}")
        return wanted

    def _bring_up(self, name: str, config: NetworkConfig) -> None:
        gateway = IPv4Interface((config.gateway, config.subnet.prefixlen))
        bridge.ensure_bridge(config.bridge, gateway, internal=config.internal)
        tag_link(config.bridge, self._tag)
        if name not in self._listening:
            if self._dns is None:
                self._dns = DnsServer(DnsTable(), host_resolvers())
                self._dns.start()
            self._listening[name] = self._dns.listen(str(config.gateway), self._dns_port)

    def _destroy(self, record: NetworkRecord) -> None:
        """Tear a network down from its record; every step tolerates what is already gone."""
        self._state.save_network(record.model_copy(update={"status": NetworkStatus.REMOVING}))
        config = config_of(record)
        for endpoint in self._store.endpoints(network=record.name):
            self._wiring.unplug(endpoint)
        address = self._listening.pop(record.name, None)
        if address is not None and self._dns is not None:
            self._dns.unlisten(address)
        bridge.delete_bridge(config.bridge)
        self._store.forget_network(record.name)
        self._state.delete_network(record.name)
        self._sync_firewall()
        self._refresh_dns()

    def remove_network(self, name: str, *, force: bool = False) -> None:
        """Remove a network; with containers attached only if `force` (they lose that interface)."""
        with self._lock:
            record = self._state.get_network(name)
            attached = sorted({e.container_id[:12] for e in self._store.endpoints(network=name)})
            if attached and not force:
                raise RuntimeFailure(f"network {name} has containers attached: {', '.join(attached)}")
            self._destroy(record)

    def list_networks(self) -> list[NetworkRecord]:
        return self._state.list_networks()

    def inspect_network(self, name: str) -> NetworkDetails:
        record = self._state.get_network(name)
        endpoints = tuple(self._store.endpoints(network=name))
        return NetworkDetails(record=record, config=config_of(record), endpoints=endpoints)

    def prune(self, labels: Mapping[str, str | None] | None = None) -> list[str]:
        """Remove every network no container is attached to (matching `labels`); their names."""
        removed: list[str] = []
        with self._lock:
            for record in self._state.list_networks():
                wanted = all(
                    k in record.labels and v in (None, record.labels[k]) for k, v in (labels or {}).items()
                )
                if wanted and not self._store.endpoints(network=record.name):
                    self._destroy(record)
                    removed.append(record.name)
        return removed

    # -- containers -------------------------------------------------------------------------

    def connect(
        self,
        container_id: str,
        attachments: Iterable[AttachmentLike],
        names: Sequence[str],
        *,
        hostname: str | None = None,
        dns: Sequence[str] = (),
        dns_search: Sequence[str] = (),
        dns_options: Sequence[str] = (),
    ) -> NetnsInfo:
        """Make the container's namespace and plug it into each network, in order (eth0, eth1..).

        `names` (service, container name, hostname) and each attachment's aliases become DNS
        names on that network. Everything that can be refused (unknown network, static address
        outside the subnet or taken) is checked before anything is made; a failure half-way is
        rolled back.
        """
        wanted = [Attachment.of(item) for item in attachments]
        with self._lock:  # addresses are handed out under the lock; the kernel work is not
            endpoints = self._wiring.reserve(container_id, wanted, names)
        try:
            self._wiring.build(container_id, endpoints)
        except BaseException:
            self.disconnect(container_id)
            raise
        with self._lock:
            self._refresh_dns()
        return self._wiring.info(container_id, hostname, dns, dns_search, dns_options)

    def netns_info(self, container_id: str, hostname: str | None = None) -> NetnsInfo:
        """What `connect` returned, again (without the per-call dns settings)."""
        return self._wiring.info(container_id, hostname)

    def disconnect(self, container_id: str) -> None:
        """Unplug a container from everything and delete its namespace. Idempotent, record-driven."""
        self._wiring.dismantle(container_id)  # deleting veths is slow (~35 ms): not under the lock
        with self._lock:
            if self._wiring.release(container_id):  # the firewall only changes when ports did
                self._sync_firewall()
            self._refresh_dns()

    # -- published ports --------------------------------------------------------------------

    def publish(self, container_id: str, ports: Iterable[PortBinding]) -> list[PortBinding]:
        """Set the container's published ports (replacing earlier ones); returns the real bindings.

        Conflicts with this engine's other containers and with host processes are all reported
        at once, before anything changes.
        """
        requested = list(ports)
        with self._lock:
            if not requested:  # nothing to publish: an internal-only container is fine
                if any(p.container_id == container_id for p in self._store.ports()):
                    self._store.set_ports(container_id, [])
                    self._sync_firewall()
                return []
            target = self._port_target(container_id)
            others = [p for p in self._store.ports() if p.container_id != container_id]
            records = plan_ports(container_id, requested, target, others)
            self._store.set_ports(container_id, records)
            self._sync_firewall()
        return [as_binding(record) for record in records]

    def _port_target(self, container_id: str) -> IPv4Address:
        """The address published ports lead to: the container's first non-internal network."""
        for endpoint in self._store.endpoints(container_id=container_id):
            if not ready_config(self._state, endpoint.network).internal:
                return endpoint.address
        raise RuntimeFailure(f"container {container_id[:12]} is on no network that can publish ports")

    def unpublish(self, container_id: str) -> None:
        with self._lock:
            self._store.set_ports(container_id, [])
            self._sync_firewall()

    def published(self, container_id: str | None = None) -> list[PortRecord]:
        return self._store.ports(container_id)

    # -- derived state ----------------------------------------------------------------------

    def _sync_firewall(self) -> None:
        """Rewrite our table from the records; with no network left, remove it (and our accepts
        in a foreign chain) so an idle engine leaves no trace in the firewall."""
        live = [r for r in self._state.list_networks() if r.status is not NetworkStatus.REMOVING]
        configs = [config_of(r) for r in live]
        if not configs:
            self._firewall.destroy()
            self._foreign.remove(self._firewall.table)
            return
        rules = [NetRule(bridge=c.bridge, subnet=c.subnet, internal=c.internal) for c in configs]
        ports = [as_rule(p) for p in self._store.ports()]
        self._firewall.sync(rules, ports)
        self._foreign.sync(self._firewall.table, [c.bridge for c in configs])

    def _refresh_dns(self) -> None:
        """The endpoints changed: the DNS server rebuilds its table at the next lookup (once per
        burst of changes, not once per container)."""
        if self._dns is None:
            return
        self._dns.invalidate(self._dns_table)

    def _dns_table(self) -> DnsTable:
        entries = [
            DnsEntry(container=e.container_id, network=e.network, address=e.address, names=e.names)
            for e in self._store.endpoints()
        ]
        return DnsTable.build(entries)

    def restore(self, live_containers: Iterable[str] | None = None) -> None:
        """Bring the machine back in line with the records on engine start (after a crash or a
        reboot): finish half-done networks, re-create bridges, namespaces and veths that are
        gone (same addresses), and rebuild the firewall and DNS. With `live_containers`, the
        endpoints of containers not in it are disconnected instead."""
        with self._lock:
            for record in self._state.list_networks():
                if record.status is NetworkStatus.READY:
                    self._bring_up(record.name, config_of(record))
                else:
                    self._destroy(record)
            keep = None if live_containers is None else set(live_containers)
            links = set(bridge.our_links())
            for container_id in dict.fromkeys(e.container_id for e in self._store.endpoints()):
                if keep is None or container_id in keep:
                    self._wiring.replug(container_id, links)
                else:
                    self._wiring.disconnect(container_id)
            self._sync_firewall()
            self._refresh_dns()

    # -- leftovers --------------------------------------------------------------------------

    def doctor(self, *, fix: bool = False, fix_foreign: bool = False) -> list[Orphan]:
        """Everything named like ours that no record owns; removed with `fix` (this root's only,
        unless `fix_foreign`)."""
        with self._lock:
            records = self._state.list_networks()
            endpoints = self._store.endpoints()
            return find_orphans(
                table=self._firewall.table,
                netns_dir=netns.netns_dir(self.paths.root),
                owned_links=[config_of(r).bridge for r in records] + [e.host_veth for e in endpoints],
                owned_netns=[e.netns for e in endpoints],
                table_needed=bool(records),
                foreign_filter=self._foreign,
                fix=fix,
                fix_foreign=fix_foreign,
            )

    def cleanup_orphans(self) -> list[Orphan]:
        return self.doctor(fix=True)
