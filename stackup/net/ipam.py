"""Address management for stack networks: pure functions and data, no kernel access.

Two decisions live here. Which subnet a new network gets (`choose_subnet`): the same default
pools as Docker (172.17-31.0.0/16, then 192.168.0.0/16 in /20s) so users' firewall habits carry
over, skipping anything that overlaps a host route or another network, because overlapping a
route the host already uses makes containers unreachable or, worse, shadows the LAN. And which
address a container gets (`Ipam`): the next free one after the last handed out, like netavark,
so a just-released address is not reused at once by a different container while clients may
still hold it. Leases are plain data (`Leases`) that the engine persists and restores.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from ipaddress import IPv4Address, IPv4Network

from pydantic import BaseModel, ConfigDict, model_validator

from stackup.errors import Conflict, PlanError, RuntimeFailure


class AddressPool(BaseModel):
    """A range that subnets of `size` prefix length are cut from, in order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: IPv4Network
    size: int

    @model_validator(mode="after")
    def _size_fits(self) -> AddressPool:
        if not self.base.prefixlen <= self.size <= 30:
            raise ValueError(f"pool {self.base} cannot be split into /{self.size}")
        return self

    def subnets(self) -> Iterator[IPv4Network]:
        """Every candidate subnet, lowest first."""
        return self.base.subnets(new_prefix=self.size)


DEFAULT_POOLS: tuple[AddressPool, ...] = (
    *(AddressPool(base=IPv4Network(f"172.{n}.0.0/16"), size=16) for n in range(17, 32)),
    AddressPool(base=IPv4Network("192.168.0.0/16"), size=20),
)


def choose_subnet(
    pools: Iterable[AddressPool],
    in_use: set[IPv4Network],
    host_routes: Iterable[IPv4Network],
) -> IPv4Network:
    """First pool subnet that overlaps neither another network nor a host route.

    Default routes (/0) are ignored: they overlap everything and say nothing about the LAN.
    """
    taken = [*in_use, *(route for route in host_routes if route.prefixlen > 0)]
    for pool in pools:
        for candidate in pool.subnets():
            if not any(candidate.overlaps(other) for other in taken):
                return candidate
    raise Conflict("no free subnet left in the address pools; set an explicit ipam subnet")


def check_overlaps(subnets: Mapping[str, IPv4Network]) -> None:
    """Reject explicit subnets that overlap each other, naming both networks."""
    items = sorted(subnets.items())
    for index, (name, subnet) in enumerate(items):
        for other_name, other in items[index + 1 :]:
            if subnet.overlaps(other):
                raise PlanError(f"network {name!r} subnet {subnet} overlaps network {other_name!r} ({other})")


class Leases(BaseModel):
    """What the engine persists per network: the addresses given out and the last one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    addresses: frozenset[IPv4Address] = frozenset()
    last: IPv4Address | None = None


class Ipam:
    """Hands out host addresses of one subnet; static requests and dynamic ones share the state.

    `gateway` defaults to the first host (Docker's choice). `ip_range` narrows where dynamic
    addresses come from; a static address may be anywhere in the subnet. `reserved` are
    Compose's `aux_addresses`, never handed out.
    """

    def __init__(
        self,
        subnet: IPv4Network,
        gateway: IPv4Address | None = None,
        ip_range: IPv4Network | None = None,
        reserved: Iterable[IPv4Address] = (),
        leases: Leases | None = None,
    ) -> None:
        if subnet.prefixlen > 30:
            raise PlanError(f"subnet {subnet} is too small for a gateway and a container")
        self.subnet = subnet
        self.gateway = gateway if gateway is not None else subnet.network_address + 1
        if self.gateway not in subnet or self.gateway in (subnet.network_address, subnet.broadcast_address):
            raise PlanError(f"gateway {self.gateway} is not a host address of subnet {subnet}")
        if ip_range is not None and not ip_range.subnet_of(subnet):
            raise PlanError(f"ip_range {ip_range} is not inside subnet {subnet}")
        self.ip_range = ip_range if ip_range is not None else subnet
        self.reserved = frozenset(reserved)
        for address in self.reserved:
            if address not in subnet:
                raise PlanError(f"reserved address {address} is outside subnet {subnet}")
        restored = leases if leases is not None else Leases()
        self._leases: set[IPv4Address] = set(restored.addresses)
        self._last = restored.last

    @property
    def leases(self) -> Leases:
        """A snapshot for the engine to persist."""
        return Leases(addresses=frozenset(self._leases), last=self._last)

    def _unavailable(self, address: IPv4Address) -> str | None:
        if address in (self.subnet.network_address, self.subnet.broadcast_address):
            return "is the network or broadcast address"
        if address == self.gateway:
            return "is the gateway"
        if address in self.reserved:
            return "is reserved (aux_addresses)"
        if address in self._leases:
            return "is already in use"
        return None

    def allocate(self, requested: IPv4Address | None = None) -> IPv4Address:
        """Lease `requested`, or the next free address after the last one handed out."""
        if requested is not None:
            if requested not in self.subnet:
                raise PlanError(f"address {requested} is outside subnet {self.subnet}")
            reason = self._unavailable(requested)
            if reason is not None:
                raise RuntimeFailure(f"address {requested} {reason} on {self.subnet}")
            self._leases.add(requested)
            return requested
        address = self._next_free()
        self._leases.add(address)
        self._last = address
        return address

    def _next_free(self) -> IPv4Address:
        first = int(self.ip_range.network_address)
        size = self.ip_range.num_addresses
        start = 0
        if self._last is not None and self._last in self.ip_range:
            start = int(self._last) - first + 1
        for step in range(size):
            candidate = IPv4Address(first + (start + step) % size)
            if self._unavailable(candidate) is None:
                return candidate
        raise RuntimeFailure(f"no free address left in {self.ip_range}")

    def release(self, address: IPv4Address) -> None:
        """Give an address back; releasing one that is not leased is a no-op (idempotent teardown)."""
        self._leases.discard(address)
