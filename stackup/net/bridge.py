"""Bridges and veth pairs through netlink, in process.

One `ip` exec costs about 1.4 ms and a container needs about seven. Going through pyroute2
instead costs 0.5-0.9 ms per request, almost all of it pyroute2's own event loop. So the
per-container path (`attach`, `detach`, `unplug_namespace`) uses `rtnl`: pyroute2's messages,
sent in batches on a plain blocking socket:
  - on the host, one batch creates the veth (the peer is born inside the container's
    namespace, so no temporary name, no move, no rename), enslaves it, brings it up and tags it;
  - inside the namespace, one batch on a socket opened there does sysctls, address, links up and
    the route.
Bridges, which are made once per network, and the dumps stay on pyroute2.

The bridge's MAC is set explicitly when it is created. A bridge with an assigned MAC keeps it;
otherwise the kernel copies the lowest port MAC, which changes as veths come and go and left
neighbours with stale ARP entries for up to 100 s (netavark's note in `bridge.rs`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from stackup.errors import RuntimeFailure
from stackup.net import names, netns, rtnl

_MAIN_TABLE = 254
_LOOPBACK_INDEX = 1  # the kernel registers lo first in every namespace


@contextmanager
def _refusals(what: str) -> Iterator[None]:
    """Kernel refusals become RuntimeFailure naming the operation."""
    try:
        yield
    except NetlinkError as exc:
        raise RuntimeFailure(f"{what}: {os.strerror(exc.code)}") from exc


@contextmanager
def _netlink(what: str) -> Iterator[Any]:
    """A netlink socket in the host namespace (the caller's thread's namespace)."""
    with _refusals(what), IPRoute() as ipr:
        yield ipr


def _sysctl(key: str, value: str) -> None:
    """Write one sysctl of the current thread's network namespace (through /proc, no exec)."""
    path = Path("/proc/sys") / key.replace(".", "/")
    if path.read_text().strip() != value:
        path.write_text(value)


def _index(ipr: Any, ifname: str) -> int | None:
    found: list[int] = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _local_index(ifname: str) -> int | None:
    """The interface index in the calling thread's namespace, by ioctl: ~8 us, where a netlink
    lookup through pyroute2 costs ~0.7 ms (two of them per container were a tenth of `attach`)."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def bridge_mac(name: str) -> str:
    """A stable, locally administered unicast MAC for a bridge, derived from its name."""
    digest = names.short_hash("mac:" + name, 10)
    return "02:" + ":".join(digest[i : i + 2] for i in range(0, 10, 2))


def ensure_bridge(name: str, gateway: IPv4Interface, *, internal: bool) -> None:
    """Create the bridge if needed, give it the gateway address, bring it up. Idempotent.

    `route_localnet` lets DNAT'ed traffic from 127.0.0.1 leave through the bridge (it is then
    masqueraded, see firewall); `rp_filter=2` (loose) as netavark does. Forwarding is only
    switched on for networks that route out; an internal network needs none.
    """
    names.check_ifname(name)
    with _netlink(f"cannot set up bridge {name}") as ipr:
        index = _index(ipr, name)
        if index is None:
            ipr.link("add", ifname=name, kind="bridge", address=bridge_mac(name))
            index = _index(ipr, name)
        else:
            kind = ipr.get_links(index)[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
            if kind != "bridge":
                raise RuntimeFailure(f"interface {name} exists and is a {kind}, not a bridge")
        addrs = ipr.get_addr(index=index, family=socket.AF_INET)
        present = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in addrs}
        if (str(gateway.ip), gateway.network.prefixlen) not in present:
            ipr.addr("add", index=index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen)
        _sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")
        _sysctl(f"net.ipv4.conf.{name}.rp_filter", "2")
        ipr.link("set", index=index, state="up")
    if not internal:
        _sysctl("net.ipv4.ip_forward", "1")


def delete_bridge(name: str) -> None:
    """Remove a bridge (its remaining ports are released by the kernel); missing is fine."""
    _delete_link(name, "bridge")


def attach(
    netns_path: Path,
    bridge: str,
    ifname: str,
    address: IPv4Interface,
    gateway: IPv4Address | None,
    *,
    mac: str | None = None,
    alias: str | None = None,
) -> str:
    """Plug the namespace at `netns_path` into `bridge` as `ifname`; returns the host veth name.

    With `gateway` None (internal networks, or a second network of a container) no default route
    is added. The host name is derived from the namespace and ifname, so `detach` after a crash
    can find it again. `alias` is set on the host end (the engine's ownership tag for `doctor`).
    """
    host = names.veth_name(f"{netns_path}:{ifname}")
    names.check_ifname(ifname)
    master = _local_index(bridge)
    if master is None:
        raise RuntimeFailure(f"bridge {bridge} does not exist")
    ns_fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        create = [rtnl.veth_add(host, ifname, master=master, netns_fd=ns_fd, peer_mac=mac)]
        if alias is not None:  # the kernel ignores IFLA_IFALIAS when it creates a link
            create.append(rtnl.link_set(host, alias=alias))
        with rtnl.Rtnl() as sock:
            sock.batch(create)
    except rtnl.NetlinkFailure as exc:
        if exc.position > 0:  # the veth was made
            _delete_link(host, "veth")
        raise RuntimeFailure(f"cannot attach {netns_path} to {bridge}: {exc}") from exc
    finally:
        os.close(ns_fd)
    try:
        _configure_inside(netns_path, ifname, address, gateway)
    except BaseException:
        _delete_link(host, "veth")
        raise
    return host


def _configure_inside(
    netns_path: Path, ifname: str, address: IPv4Interface, gateway: IPv4Address | None
) -> None:
    """Sysctls, address, links up and route inside the container namespace, as one batch on a
    socket opened there.

    Order matters: `arp_notify` must be on before the link comes up, so that coming up announces
    the address (a reused address with a new MAC would otherwise stay stale in neighbours'
    caches). The address comes before the link is up and the route comes last, because it needs
    the subnet route that appears once both are in place.
    """
    with netns.enter(netns_path):
        sock = rtnl.Rtnl()  # bound to the container's namespace for its whole life
        index = _local_index(ifname)
    with sock:
        if index is None:
            raise RuntimeFailure(f"{ifname} did not appear in {netns_path}")
        conf = {rtnl.IPV4_DEVCONF_ARP_NOTIFY: 1, rtnl.IPV4_DEVCONF_RP_FILTER: 2}
        requests = [
            rtnl.link_set(_LOOPBACK_INDEX, up=True, name="lo"),
            rtnl.link_set(index, inet_conf=conf, name=ifname),
            rtnl.addr_add(index, address, name=ifname),
            rtnl.link_set(index, up=True, name=ifname),
        ]
        if gateway is not None:
            requests.append(rtnl.default_route_add(gateway))
        try:
            sock.batch(requests)
        except rtnl.NetlinkFailure as exc:
            raise RuntimeFailure(f"cannot configure {ifname} in {netns_path}: {exc}") from exc


def detach(host_veth: str) -> None:
    """Remove a container's veth pair by its host end; gone already is fine."""
    _delete_link(host_veth, "veth")


def unplug_namespace(netns_path: Path, host_veths: Iterable[str]) -> None:
    """Delete a container's veth pairs, then its namespace; any of them already gone is fine.

    Each veth costs 16-40 ms, nearly all of it the kernel waiting for RCU while it unregisters
    the pair. Neither order, nor taking the port off the bridge or down first, changes that
    (measured here). Unpinning the namespace alone returns at once and the kernel takes the
    pair along later, but then the veth would still be there after this returns: `doctor` would
    report it, and a new veth of the same name would collide. So each one is deleted here.
    """
    for host_veth in host_veths:
        detach(host_veth)
    netns.delete(netns_path)


def _delete_link(name: str, what: str) -> None:
    try:
        with rtnl.Rtnl() as sock:
            sock.batch([rtnl.link_del(name)])
    except rtnl.NetlinkFailure as exc:
        if not rtnl.gone(exc):
            raise RuntimeFailure(f"cannot delete {what} {name}: {exc}") from exc


def host_routes() -> set[IPv4Network]:
    """Destinations of the host's main IPv4 routing table, for `ipam.choose_subnet`."""
    with _netlink("cannot read host routes") as ipr:
        routes = ipr.get_routes(family=socket.AF_INET, table=_MAIN_TABLE)
        return {
            IPv4Network(f"{route.get('RTA_DST') or '0.0.0.0'}/{route['dst_len']}", strict=False)
            for route in routes
        }


def our_links() -> list[str]:
    """Every interface on the host named by stackup's scheme (bridges and veths), for `doctor`."""
    with _netlink("cannot list links") as ipr:
        found = (link.get("IFLA_IFNAME") for link in ipr.get_links())
        return sorted(name for name in found if isinstance(name, str) and names.is_ours(name))
