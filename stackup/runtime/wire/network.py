"""The values the network manager takes and returns (requests, results, inspect answers).

Kept apart from `networks.py` so the daemon's API layer and its client can import them without
pulling in netlink, nftables and the DNS server.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from stackup.net.firewall import Proto
from stackup.runtime.wire.records import NetworkRecord

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class NetworkConfig(BaseModel):
    """The part of a `NetworkRecord` owned by the network layer (stored in `record.config`).

    `id` is random so a network re-created under the same name gets a new bridge name, and two
    engine roots never derive the same bridge.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    driver: str = "bridge"
    bridge: str
    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network | None = None
    internal: bool = False


class Endpoint(BaseModel):
    """One container plugged into one network: enough to unplug it or plug it in again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    container_id: str
    network: str
    ifname: str
    host_veth: str
    address: IPv4Address
    names: tuple[str, ...]
    netns: Path


class PortRecord(BaseModel):
    """One published port as it is in the firewall: the host side resolved to a real port."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    container_id: str
    host_ip: IPv4Address | None = None
    host_port: int
    proto: Proto = Proto.TCP
    container_ip: IPv4Address
    container_port: int


class Attachment(BaseModel):
    """One network a container joins: Compose's `services.<s>.networks.<n>` entry."""

    model_config = _FROZEN

    network: str
    aliases: tuple[str, ...] = ()
    ipv4_address: IPv4Address | None = None

    @classmethod
    def of(cls, value: Attachment | tuple[str, Sequence[str], IPv4Address | str | None]) -> Attachment:
        """Accept the model or a plain `(network, aliases, ipv4_address)` triple."""
        if isinstance(value, Attachment):
            return value
        network, aliases, address = value
        return cls(network=network, aliases=tuple(aliases), ipv4_address=None if address is None else address)


class PortBinding(BaseModel):
    """A published port; `host_port` None asks for a free one, `host_ip` None means every address."""

    model_config = _FROZEN

    host_ip: IPv4Address | None = None
    host_port: int | None = Field(default=None, ge=1, le=65535)
    container_port: int = Field(ge=1, le=65535)
    proto: Proto = Proto.TCP


class EndpointInfo(BaseModel):
    """One interface inside the container, as the container sees it."""

    model_config = _FROZEN

    network: str
    ifname: str
    address: IPv4Address
    prefixlen: int
    gateway: IPv4Address


class HostLine(BaseModel):
    """One line the container's /etc/hosts needs beyond localhost (its own name)."""

    model_config = _FROZEN

    address: IPv4Address
    hostname: str

    def __str__(self) -> str:
        return f"{self.address}\t{self.hostname}"


class NetnsInfo(BaseModel):
    """What the container manager needs after `connect`: where the namespace is, and the files.

    `nameservers` starts with the first network's gateway (our DNS server); `dns` given to
    `connect` follows it, so names of other containers keep resolving while the extra servers are
    still there for the resolver to fall back to.
    """

    model_config = _FROZEN

    path: Path
    endpoints: tuple[EndpointInfo, ...]
    nameservers: tuple[str, ...]
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    hosts: tuple[HostLine, ...] = ()

    @property
    def resolv_conf(self) -> str:
        lines = [f"nameserver {server}" for server in self.nameservers]
        if self.search:
            lines.append("search " + " ".join(self.search))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"

    @property
    def hosts_lines(self) -> list[str]:
        return [str(line) for line in self.hosts]


class NetworkDetails(BaseModel):
    """`network inspect`: the record, its wiring and who is plugged in."""

    model_config = _FROZEN

    record: NetworkRecord
    config: NetworkConfig
    endpoints: tuple[Endpoint, ...]
