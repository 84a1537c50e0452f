"""Batched rtnetlink requests on a plain blocking socket, with pyroute2's messages.

pyroute2 builds and parses every message here: `ifinfmsg`, `ifaddrmsg` and `rtmsg` encode the
requests, `nlmsgerr` decodes the acks (the error code and the kernel's extended-ack reason), and
the constants are its own where it has them. What this module adds is the transport. pyroute2 0.9 runs every
request through an asyncio event loop: 0.5-0.9 ms per request and about 0.6 ms per new socket,
while the kernel answers a request in about 10 us. A container needs a veth creation and its
tag on the host and five small requests inside its namespace, so `bridge.attach` and
`bridge.detach` send each side's requests as one batch on a blocking socket: one `send`, then
one ack per message. Encoding costs 30-300 us a message in pyroute2 (about 0.9 ms for a
container's seven), a fraction of what the event loop would add to them. Bridges, route dumps and
`doctor` stay on pyroute2's `IPRoute`.

A `Rtnl` is one socket. It is cheap to open (about 60 us) and is used by one thread at a time.
Callers open one per operation instead of sharing one, so nothing needs a lock and no socket is
left in a bad state after an error. The socket belongs to the network namespace of the thread
that opened it, which is how `bridge` talks to a container's namespace (see `netns.enter`).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from types import TracebackType
from typing import Any

from pyroute2.netlink import (
    NETLINK_EXT_ACK,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    SOL_NETLINK,
    nla,
    nlmsg,
    nlmsgerr,
)
from pyroute2.netlink.rtnl import (
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    RTM_SETLINK,
    rtprotos,
    rtscopes,
    rtypes,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfbase, ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

_NETLINK_CAP_ACK = 10  # <linux/netlink.h>; pyroute2 has no name for it
_RT_TABLE_MAIN = 254

# <linux/ip.h> IPV4_DEVCONF_*: each one's index in pyroute2's `struct ipv4_devconf` table, which
# names the first 28; later ids (the kernel has a few more) get a plain name. The kernel refuses
# an id it does not know.
_DEVCONF: tuple[str, ...] = tuple(ifinfmsg.af_spec_inet.inet.field_names)
_DEVCONF_IDS = 64
_DEVCONF += tuple(f"devconf_{key}" for key in range(len(_DEVCONF), _DEVCONF_IDS))
IPV4_DEVCONF_RP_FILTER = _DEVCONF.index("rp_filter")
IPV4_DEVCONF_ARP_NOTIFY = _DEVCONF.index("arp_notify")


class _SetLinkMsg(ifinfbase, nlmsg):  # type: ignore[misc]
    """`ifinfmsg` with the IFLA_AF_SPEC layout the kernel takes in a request.

    pyroute2's `ifinfmsg` only knows the layout the kernel sends in a dump: AF_INET holds
    IFLA_INET_CONF as a flat array of every `ipv4_devconf` value. To set some of them the kernel
    wants IFLA_INET_CONF to hold one u32 attribute per setting, typed by its IPV4_DEVCONF_* id
    (`inet_set_link_af`); the array is refused. So this sibling of `ifinfmsg` (same header and
    attributes, from pyroute2's `ifinfbase`) declares that one attribute with pyroute2's `nla`
    class; nothing is packed by hand. It is a sibling rather than a subclass because pyroute2
    compiles an attribute table once per class and a subclass would inherit `ifinfmsg`'s.
    """

    class af_spec(nla):  # type: ignore[misc]  # noqa: N801 (the name ifinfbase.nla_map looks up)
        nla_map = ((socket.AF_INET, "AF_INET", "Inet"),)

        class Inet(nla):  # type: ignore[misc]
            nla_map = ((1, "IFLA_INET_CONF", "Conf"),)

            class Conf(nla):  # type: ignore[misc]
                nla_map = tuple((key, name, "uint32") for key, name in enumerate(_DEVCONF) if key)


class _CappedAck(nlmsgerr):  # type: ignore[misc]
    """`nlmsgerr` as it arrives on a NETLINK_CAP_ACK socket: the refused request's header sits
    between the error code and the extended-ack attributes (pyroute2 declares only the code, so
    it would look for the attributes 16 bytes too early)."""

    fields = (
        ("error", "i"),
        ("request_length", "I"),
        ("request_type", "H"),
        ("request_flags", "H"),
        ("request_sequence_number", "I"),
        ("request_pid", "I"),
    )


class NetlinkFailure(OSError):
    """The kernel refused a request: `errno`, what was asked and why, and `position`, the
    request's index in its batch (the kernel still tried the others)."""

    def __init__(self, code: int, what: str, detail: str = "", position: int = 0) -> None:
        reason = os.strerror(code) + (f" ({detail})" if detail else "")
        super().__init__(code, f"{what}: {reason}")
        self.what = what
        self.position = position


@dataclass(frozen=True)
class Request:
    """One rtnetlink request: a pyroute2 message with its type, flags and attributes set.
    `Rtnl.batch` numbers and encodes it (so a request belongs to one batch at a time). `what`
    names it in errors."""

    message: Any
    what: str


def _request(message: Any, kind: int, what: str, flags: int = 0) -> Request:
    message["header"]["type"] = kind
    message["header"]["flags"] = flags
    return Request(message, what)


def _link(message: Any, link: int | str, up: bool | None = None) -> Any:
    """Name a link by index, or by name (the kernel looks it up: no race with a separate
    lookup, and one request instead of two). `up` None leaves the flags alone (`change` 0)."""
    if isinstance(link, int):
        message["index"] = link
    else:
        message["attrs"].append(("IFLA_IFNAME", link))
    if up is not None:
        message["flags"] = IFF_UP if up else 0
        message["change"] = IFF_UP
    return message


def veth_add(
    host: str,
    peer: str,
    *,
    master: int,
    netns_fd: int,
    peer_mac: str | None = None,
    alias: str | None = None,
) -> Request:
    """A veth pair: `host` enslaved to `master` and up, `peer` born (down) in `netns_fd`."""
    peer_attrs: list[tuple[str, object]] = [("IFLA_IFNAME", peer), ("IFLA_NET_NS_FD", netns_fd)]
    if peer_mac is not None:
        peer_attrs.append(("IFLA_ADDRESS", peer_mac))
    message = _link(ifinfmsg(), host, up=True)
    message["attrs"].append(("IFLA_MASTER", master))
    if alias is not None:
        message["attrs"].append(("IFLA_IFALIAS", alias))
    data = {"attrs": [("VETH_INFO_PEER", {"attrs": peer_attrs})]}
    info = {"attrs": [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", data)]}  # kind first: it types the data
    message["attrs"].append(("IFLA_LINKINFO", info))
    return _request(message, RTM_NEWLINK, f"create veth {host}", NLM_F_CREATE | NLM_F_EXCL)


def link_set(
    link: int | str,
    *,
    up: bool | None = None,
    alias: str | None = None,
    inet_conf: Mapping[int, int] | None = None,
    name: str = "",
) -> Request:
    """Change a link: flags, alias, IPv4 per-device settings (`IPV4_DEVCONF_*` -> value, the
    netlink form of `net.ipv4.conf.<if>.*`). `name` is only for error messages."""
    message = _link(_SetLinkMsg(), link, up)
    if alias is not None:
        message["attrs"].append(("IFLA_IFALIAS", alias))
    if inet_conf:
        if not all(0 < key < _DEVCONF_IDS for key in inet_conf):
            raise ValueError(f"not an IPV4_DEVCONF id: {sorted(inet_conf)}")
        conf = {"attrs": [(_DEVCONF[key], value) for key, value in inet_conf.items()]}
        inet = {"attrs": [("IFLA_INET_CONF", conf)]}
        message["attrs"].append(("IFLA_AF_SPEC", {"attrs": [("AF_INET", inet)]}))
    return _request(message, RTM_SETLINK, f"configure link {name or link}")


def addr_add(index: int, address: IPv4Interface, *, name: str = "") -> Request:
    message = ifaddrmsg()
    message["family"] = socket.AF_INET
    message["prefixlen"] = address.network.prefixlen
    message["scope"] = rtscopes["RT_SCOPE_UNIVERSE"]
    message["index"] = index
    message["attrs"] = [("IFA_LOCAL", str(address.ip)), ("IFA_ADDRESS", str(address.ip))]
    what = f"add address {address} to {name or index}"
    return _request(message, RTM_NEWADDR, what, NLM_F_CREATE | NLM_F_EXCL)


def default_route_add(gateway: IPv4Address) -> Request:
    message = rtmsg()
    message["family"] = socket.AF_INET
    message["table"] = _RT_TABLE_MAIN
    message["proto"] = rtprotos["RTPROT_STATIC"]  # what `ip route add` and IPRoute record
    message["scope"] = rtscopes["RT_SCOPE_UNIVERSE"]
    message["type"] = rtypes["RTN_UNICAST"]
    message["attrs"] = [("RTA_GATEWAY", str(gateway))]
    what = f"add default route via {gateway}"
    return _request(message, RTM_NEWROUTE, what, NLM_F_CREATE | NLM_F_EXCL)


def link_del(link: int | str) -> Request:
    return _request(_link(ifinfmsg(), link), RTM_DELLINK, f"delete link {link}")


class Rtnl:
    """One blocking NETLINK_ROUTE socket in the namespace of the thread that opens it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            self._sock.setsockopt(SOL_NETLINK, _NETLINK_CAP_ACK, 1)  # acks without the request
            self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # the kernel's reason text
            self._sock.bind((0, 0))
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def batch(self, requests: Sequence[Request]) -> None:
        """Send `requests` in one datagram and wait for every ack.

        The kernel runs them in order and does not stop at a refusal, so a batch must only hold
        requests whose failure makes the rest harmless. The first refusal is raised.
        """
        pending: dict[int, tuple[int, Request]] = {}
        wire = bytearray()
        for position, request in enumerate(requests):
            self._seq += 1
            pending[self._seq] = (position, request)
            wire += _encode(request, self._seq)
        self._sock.send(wire)
        failures: dict[int, NetlinkFailure] = {}
        while pending:
            for seq, code, detail in _acks(self._sock.recv(65536)):
                sent = pending.pop(seq, None)
                if sent is not None and code:
                    failures[seq] = NetlinkFailure(code, sent[1].what, detail, sent[0])
        if failures:
            raise failures[min(failures)]


def _encode(request: Request, seq: int) -> bytes:
    header = request.message["header"]
    header["flags"] |= NLM_F_REQUEST | NLM_F_ACK
    header["sequence_number"] = seq
    request.message.encode()
    return bytes(request.message.data[: header["length"]])  # pyroute2 appends on a re-encode


def _acks(data: bytes) -> Iterable[tuple[int, int, str]]:
    """(seq, errno, extack message) for every ack in one datagram. Nothing else reaches this
    socket: it joins no multicast group and sends no request that is answered with data."""
    offset = 0
    while offset < len(data):
        ack = _CappedAck(data, offset=offset)
        ack.decode()
        header = ack["header"]
        if header["length"] < 16:  # malformed: stop rather than loop
            break
        if header["type"] == NLMSG_ERROR:
            detail = ack.get_attr("NLMSGERR_ATTR_MSG") or ""
            yield header["sequence_number"], -ack["error"], detail
        offset += (header["length"] + 3) & ~3


def gone(exc: NetlinkFailure) -> bool:
    """Whether a refusal only says the link is not there (any more)."""
    return exc.errno == errno.ENODEV
