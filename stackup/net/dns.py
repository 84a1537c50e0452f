"""The embedded DNS server containers use for service discovery.

One server (a thread) serves every network, like aardvark-dns: it listens on each bridge's
gateway address, port 53, over UDP and TCP. An answer depends on who asks: the source address
identifies the container, and only names registered on networks that container is on are
answered, with every replica's address and TTL 0 so a recreated container is seen at once. A
name that exists only on networks the asker is not on gets NXDOMAIN here: relaying it would leak
service names to the host's resolvers and make isolation depend on what they say. Any other name
is relayed byte for byte to the host's resolvers, which is what a container would get without us.

Messages are parsed and built with dnspython (typed, maintained, the reference Python DNS
library); writing the wire format by hand would buy nothing. Relaying keeps the upstream's bytes,
so EDNS options and DNSSEC records pass through untouched.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from pydantic import BaseModel, ConfigDict

from stackup.errors import RuntimeFailure

Address = tuple[str, int]
_MAX_UDP = 65535
_TCP_IDLE = 5.0


def normalize(name: str) -> str:
    """DNS names compare case-insensitively and with or without the final dot."""
    return name.rstrip(".").lower()


class DnsEntry(BaseModel):
    """One container endpoint: its address on `network` and every name it answers to there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    container: str
    network: str
    address: IPv4Address
    names: tuple[str, ...]


class DnsTable(BaseModel):
    """Who may resolve what: names per network, and the networks each asking address is on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    records: Mapping[tuple[str, str], tuple[IPv4Address, ...]] = {}
    members: Mapping[IPv4Address, frozenset[str]] = {}
    known: frozenset[str] = frozenset()

    @classmethod
    def build(cls, entries: Iterable[DnsEntry]) -> DnsTable:
        """Index endpoints; replicas sharing a name all appear, in address order."""
        records: dict[tuple[str, str], set[IPv4Address]] = {}
        networks_of: dict[str, set[str]] = {}
        addresses_of: dict[str, set[IPv4Address]] = {}
        for entry in entries:
            networks_of.setdefault(entry.container, set()).add(entry.network)
            addresses_of.setdefault(entry.container, set()).add(entry.address)
            for name in entry.names:
                records.setdefault((entry.network, normalize(name)), set()).add(entry.address)
        members = {
            address: frozenset(networks_of[container])
            for container, addresses in addresses_of.items()
            for address in addresses
        }
        return cls(
            records={key: tuple(sorted(ips)) for key, ips in records.items()},
            members=members,
            known=frozenset(name for _, name in records),
        )

    def lookup(self, asker: IPv4Address, name: str) -> tuple[IPv4Address, ...] | None:
        """Addresses of `name` visible to `asker`, or None when the name is not ours to answer."""
        found: set[IPv4Address] = set()
        known = False
        for network in self.members.get(asker, frozenset()):
            ips = self.records.get((network, normalize(name)))
            if ips is not None:
                known = True
                found.update(ips)
        return tuple(sorted(found)) if known else None


def host_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[Address]:
    """The host's nameservers, the upstreams for names that are not containers'."""
    servers: list[Address] = []
    with contextlib.suppress(OSError):
        for line in resolv_conf.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                servers.append((fields[1].split("%")[0], 53))
    return servers


def answer_locally(table: DnsTable, asker: str, wire: bytes) -> bytes | None:
    """The reply to `wire` from `table`, or None when it has to be relayed upstream."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None  # let the upstream produce FORMERR in its own words
    if len(query.question) != 1 or query.opcode() != 0:
        return None
    try:
        source = IPv4Address(asker)
    except ValueError:
        return None
    question = query.question[0]
    name = question.name.to_text()
    ips = table.lookup(source, name)
    if ips is None and normalize(name) not in table.known:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA | dns.flags.RA
    if ips is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        texts = [str(ip) for ip in ips]
        rrset = dns.rrset.from_text_list(question.name, 0, dns.rdataclass.IN, dns.rdatatype.A, texts)
        response.answer.append(rrset)
    return response.to_wire()


def _servfail(wire: bytes) -> bytes | None:
    try:
        response = dns.message.make_response(dns.message.from_wire(wire))
    except dns.exception.DNSException:
        return None
    response.set_rcode(dns.rcode.SERVFAIL)
    return response.to_wire()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-message")
        data += chunk
    return data


def relay(wire: bytes, upstreams: Sequence[Address], *, tcp: bool, timeout: float) -> bytes | None:
    """Ask each upstream in turn; the first reply with the query's id wins. None if all fail."""
    for host, port in upstreams:
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        try:
            with socket.socket(_family(host), kind) as sock:
                sock.settimeout(timeout)
                sock.connect((host, port))
                if tcp:
                    sock.sendall(struct.pack("!H", len(wire)) + wire)
                    (length,) = struct.unpack("!H", _recv_exact(sock, 2))
                    reply = _recv_exact(sock, length)
                else:
                    sock.send(wire)
                    reply = sock.recv(_MAX_UDP)
        except (OSError, ConnectionError, ValueError):
            continue
        if reply[:2] == wire[:2]:
            return reply
    return None


class DnsServer:
    """UDP and TCP listeners on a changing set of addresses, one selector thread.

    Local answers are computed on the selector thread (a dict lookup); relays and TCP
    conversations run on a small pool so a slow upstream never stalls container lookups.
    """

    def __init__(self, table: DnsTable, upstreams: Sequence[Address], *, timeout: float = 2.0) -> None:
        self._table = table
        self._pending: Callable[[], DnsTable] | None = None
        self._table_lock = threading.Lock()
        self._upstreams = tuple(upstreams)
        self._timeout = timeout
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[Address, tuple[socket.socket, socket.socket]] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="stackup-dns")
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="stackup-dns", daemon=True)

    def update(self, table: DnsTable) -> None:
        """Swap in a new table; queries in flight finish with the old one."""
        with self._table_lock:
            self._table = table
            self._pending = None

    def invalidate(self, build: Callable[[], DnsTable]) -> None:
        """The table changed: `build` makes the new one, at the next query that needs it.

        Starting fifty containers would otherwise rebuild the whole table fifty times (each
        rebuild reads every endpoint); now the first lookup after a burst rebuilds it once, and
        a lookup never sees a stale table.
        """
        with self._table_lock:
            self._pending = build

    def _current(self) -> DnsTable:
        with self._table_lock:
            if self._pending is not None:
                self._table = self._pending()
                self._pending = None
            return self._table

    def listen(self, host: str, port: int = 53) -> Address:
        """Start answering on `host:port` (UDP and TCP); returns the bound address (port 0 -> real)."""
        udp = socket.socket(_family(host), socket.SOCK_DGRAM)
        tcp = socket.socket(_family(host), socket.SOCK_STREAM)
        try:
            udp.bind((host, port))
            bound = udp.getsockname()[1]
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, bound))
            tcp.listen(64)
        except OSError as exc:
            udp.close()
            tcp.close()
            raise RuntimeFailure(f"DNS cannot listen on {host}:{port}: {exc.strerror}") from exc
        for sock in (udp, tcp):
            sock.setblocking(False)
        with self._lock:
            self._listeners[(host, bound)] = (udp, tcp)
            self._selector.register(udp, selectors.EVENT_READ, "udp")
            self._selector.register(tcp, selectors.EVENT_READ, "tcp")
        return (host, bound)

    def unlisten(self, address: Address) -> None:
        """Stop answering on one address (its network went away); unknown addresses are ignored."""
        with self._lock:
            pair = self._listeners.pop(address, None)
            if pair is None:
                return
            for sock in pair:
                self._selector.unregister(sock)
                sock.close()

    @property
    def addresses(self) -> list[Address]:
        """Addresses currently served."""
        with self._lock:
            return sorted(self._listeners)

    def start(self) -> None:
        """Run the selector thread (returns at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, close every socket, wait for relays in flight."""
        self._stopping = True
        self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join()
        for address in self.addresses:
            self.unlisten(address)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _serve(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(timeout=1.0):
                sock = key.fileobj
                if not isinstance(sock, socket.socket) or sock is self._wake_r:
                    continue
                with contextlib.suppress(OSError):  # closed by unlisten, or the peer went away
                    if key.data == "udp":
                        self._on_datagram(sock)
                    else:
                        conn, peer = sock.accept()
                        self._pool.submit(self._converse, conn, peer[0])

    def _on_datagram(self, sock: socket.socket) -> None:
        wire, peer = sock.recvfrom(_MAX_UDP)
        reply = answer_locally(self._current(), peer[0], wire)
        if reply is not None:
            sock.sendto(reply, peer)
        else:
            self._pool.submit(self._relay_datagram, sock, wire, peer)

    def _relay_datagram(self, sock: socket.socket, wire: bytes, peer: Address) -> None:
        reply = relay(wire, self._upstreams, tcp=False, timeout=self._timeout) or _servfail(wire)
        if reply is not None:
            with contextlib.suppress(OSError):
                sock.sendto(reply, peer)

    def _converse(self, conn: socket.socket, asker: str) -> None:
        """One TCP client: length-prefixed queries until it closes or idles out."""
        with conn, contextlib.suppress(OSError, ConnectionError):
            conn.setblocking(True)
            conn.settimeout(_TCP_IDLE)
            while True:
                (length,) = struct.unpack("!H", _recv_exact(conn, 2))
                wire = _recv_exact(conn, length)
                reply = answer_locally(self._current(), asker, wire)
                if reply is None:
                    reply = relay(wire, self._upstreams, tcp=True, timeout=self._timeout) or _servfail(wire)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
