"""A minimal rtnetlink client for the per-container path: a plain socket and `struct`.

pyroute2 0.9 runs every request through an asyncio event loop. That costs 0.5-0.9 ms per request
and about 0.6 ms per new socket, while the kernel answers a raw request in about 10 us. A
container needs a veth creation and its tag on the host and five small requests inside its
namespace, so `bridge.attach` and `bridge.detach` build the few messages they need here. They
send each side's requests as one batch: one `send`, then one ack per message. Bridges, route
dumps and `doctor` stay on pyroute2, where its parsing is worth what it costs.

A `Rtnl` is one socket. It is cheap to open (about 60 us) and is used by one thread at a time.
Callers open one per operation instead of sharing one, so nothing needs a lock and no socket is
left in a bad state after an error. The socket belongs to the network namespace of the thread
that opened it, which is how `bridge` talks to a container's namespace (see `netns.enter`).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from types import TracebackType

# <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/veth.h>, <linux/ip.h>
_SOL_NETLINK = 270
_NETLINK_CAP_ACK = 10
_NETLINK_EXT_ACK = 11
_NLMSG_ERROR = 2
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLM_F_EXCL = 0x200
_NLM_F_CREATE = 0x400
_NLM_F_ACK_TLVS = 0x200
_NLMSGERR_ATTR_MSG = 1
_RTM_NEWLINK = 16
_RTM_DELLINK = 17
_RTM_SETLINK = 19
_RTM_NEWADDR = 20
_RTM_NEWROUTE = 24
_IFF_UP = 0x1
_IFLA_ADDRESS = 1
_IFLA_IFNAME = 3
_IFLA_MASTER = 10
_IFLA_LINKINFO = 18
_IFLA_IFALIAS = 20
_IFLA_AF_SPEC = 26
_IFLA_NET_NS_FD = 28
_IFLA_INFO_KIND = 1
_IFLA_INFO_DATA = 2
_IFLA_INET_CONF = 1
_VETH_INFO_PEER = 1
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_RTA_GATEWAY = 5
_RT_TABLE_MAIN = 254
_RTPROT_STATIC = 4  # what pyroute2 and `ip route add` record for a configured route
_RT_SCOPE_UNIVERSE = 0
_RTN_UNICAST = 1

IPV4_DEVCONF_RP_FILTER = 8
IPV4_DEVCONF_ARP_NOTIFY = 22

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, proto, scope, type, flags
_ATTR = struct.Struct("=HH")  # rtattr: len, type
_ERROR = struct.Struct("=i")


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
    """One rtnetlink message without its header; `what` names it in errors."""

    kind: int
    flags: int
    body: bytes
    what: str


def _attr(kind: int, payload: bytes) -> bytes:
    size = _ATTR.size + len(payload)
    return _ATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _text(kind: int, value: str) -> bytes:
    return _attr(kind, value.encode() + b"\0")


def _ifinfo(index: int = 0, up: bool | None = None) -> bytes:
    """ifinfomsg; `up` None leaves the flags alone (ifi_change 0 would mean "all of them")."""
    if up is None:
        return _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, _IFF_UP if up else 0, _IFF_UP)


def _link(link: int | str, up: bool | None = None) -> bytes:
    """ifinfomsg naming a link by index, or by name (the kernel looks it up: no race with a
    separate lookup, and one request instead of two)."""
    if isinstance(link, int):
        return _ifinfo(link, up)
    return _ifinfo(0, up) + _text(_IFLA_IFNAME, link)


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


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
    peer_attrs = _text(_IFLA_IFNAME, peer) + _u32(_IFLA_NET_NS_FD, netns_fd)
    if peer_mac is not None:
        peer_attrs += _attr(_IFLA_ADDRESS, _mac(peer_mac))
    info = _text(_IFLA_INFO_KIND, "veth") + _attr(
        _IFLA_INFO_DATA, _attr(_VETH_INFO_PEER, _ifinfo() + peer_attrs)
    )
    body = _ifinfo(up=True) + _text(_IFLA_IFNAME, host) + _u32(_IFLA_MASTER, master)
    if alias is not None:
        body += _text(_IFLA_IFALIAS, alias)
    body += _attr(_IFLA_LINKINFO, info)
    return Request(_RTM_NEWLINK, _NLM_F_CREATE | _NLM_F_EXCL, body, f"create veth {host}")


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
    body = _link(link, up)
    if alias is not None:
        body += _text(_IFLA_IFALIAS, alias)
    if inet_conf:
        conf = b"".join(_u32(key, value) for key, value in inet_conf.items())
        body += _attr(_IFLA_AF_SPEC, _attr(socket.AF_INET, _attr(_IFLA_INET_CONF, conf)))
    return Request(_RTM_SETLINK, 0, body, f"configure link {name or link}")


def addr_add(index: int, address: IPv4Interface, *, name: str = "") -> Request:
    packed = address.ip.packed
    body = _IFADDR.pack(socket.AF_INET, address.network.prefixlen, 0, _RT_SCOPE_UNIVERSE, index)
    body += _attr(_IFA_LOCAL, packed) + _attr(_IFA_ADDRESS, packed)
    return Request(
        _RTM_NEWADDR, _NLM_F_CREATE | _NLM_F_EXCL, body, f"add address {address} to {name or index}"
    )


def default_route_add(gateway: IPv4Address) -> Request:
    body = _RTMSG.pack(
        socket.AF_INET, 0, 0, 0, _RT_TABLE_MAIN, _RTPROT_STATIC, _RT_SCOPE_UNIVERSE, _RTN_UNICAST, 0
    )
    body += _attr(_RTA_GATEWAY, gateway.packed)
    return Request(_RTM_NEWROUTE, _NLM_F_CREATE | _NLM_F_EXCL, body, f"add default route via {gateway}")


def link_del(link: int | str) -> Request:
    return Request(_RTM_DELLINK, 0, _link(link), f"delete link {link}")


class Rtnl:
    """One NETLINK_ROUTE socket in the namespace of the thread that opens it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            self._sock.setsockopt(_SOL_NETLINK, _NETLINK_CAP_ACK, 1)  # acks without the request
            self._sock.setsockopt(_SOL_NETLINK, _NETLINK_EXT_ACK, 1)  # the kernel's reason text
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
            flags = _NLM_F_REQUEST | _NLM_F_ACK | request.flags
            wire += _HEADER.pack(_HEADER.size + len(request.body), request.kind, flags, self._seq, 0)
            wire += request.body
        self._sock.send(wire)
        failures: dict[int, NetlinkFailure] = {}
        while pending:
            for seq, code, detail in _acks(self._sock.recv(65536)):
                sent = pending.pop(seq, None)
                if sent is not None and code:
                    failures[seq] = NetlinkFailure(code, sent[1].what, detail, sent[0])
        if failures:
            raise failures[min(failures)]


def _acks(data: bytes) -> Iterable[tuple[int, int, str]]:
    """(seq, errno, extack message) for every ack in one datagram; other messages are skipped."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, flags, seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        if kind == _NLMSG_ERROR:
            (code,) = _ERROR.unpack_from(data, offset + _HEADER.size)
            detail = ""
            if flags & _NLM_F_ACK_TLVS:  # capped: error, then the request's header, then TLVs
                detail = _message(data[offset + _HEADER.size * 2 + _ERROR.size : offset + length])
            yield seq, -code, detail
        offset += (length + 3) & ~3


def _message(tlvs: bytes) -> str:
    offset = 0
    while offset + _ATTR.size <= len(tlvs):
        size, kind = _ATTR.unpack_from(tlvs, offset)
        if size < _ATTR.size:
            break
        if kind == _NLMSGERR_ATTR_MSG:
            return tlvs[offset + _ATTR.size : offset + size].rstrip(b"\0").decode(errors="replace")
        offset += (size + 3) & ~3
    return ""


def gone(exc: NetlinkFailure) -> bool:
    """Whether a refusal only says the link is not there (any more)."""
    return exc.errno == errno.ENODEV
