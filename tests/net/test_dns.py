"""Embedded DNS: scoping by asker, replicas, TTL 0, relaying to a fake upstream."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest

from stackup.net import netns
from stackup.net.dns import DnsEntry, DnsServer, DnsTable, answer_locally, host_resolvers
from tests.net.conftest import Lab

A = IPv4Address
UPSTREAM_ANSWER = "198.51.100.7"  # TEST-NET-2: only ever written into an answer, never contacted


def _table(a1: str, a2: str, b1: str) -> DnsTable:
    return DnsTable.build(
        [
            DnsEntry(container="c1", network="front", address=A(a1), names=("web", "proj-web-1")),
            DnsEntry(container="c2", network="front", address=A(a2), names=("web", "proj-web-2")),
            DnsEntry(container="c3", network="back", address=A(b1), names=("db",)),
        ]
    )


def _ask(table: DnsTable, asker: str, name: str, rdtype: str = "A") -> dns.message.Message | None:
    wire = answer_locally(table, asker, dns.message.make_query(name, rdtype).to_wire())
    return None if wire is None else dns.message.from_wire(wire)


def test_table_scopes_by_asker() -> None:
    table = _table("10.0.0.2", "10.0.0.3", "10.1.0.2")
    reply = _ask(table, "10.0.0.2", "WEB.")
    assert reply is not None and reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    [rrset] = reply.answer
    assert rrset.ttl == 0 and sorted(r.to_text() for r in rrset) == ["10.0.0.2", "10.0.0.3"]
    hidden = _ask(table, "10.0.0.2", "db")
    assert hidden is not None and hidden.rcode() == dns.rcode.NXDOMAIN and not hidden.answer
    assert _ask(table, "10.0.0.2", "example.org") is None  # relayed
    assert _ask(table, "10.9.9.9", "example.org") is None
    nodata = _ask(table, "10.1.0.2", "db", "AAAA")
    assert nodata is not None and nodata.rcode() == dns.rcode.NOERROR and not nodata.answer


def test_container_on_two_networks_sees_both() -> None:
    table = DnsTable.build(
        [
            DnsEntry(container="api", network="front", address=A("10.0.0.5"), names=("api",)),
            DnsEntry(container="api", network="back", address=A("10.1.0.5"), names=("api",)),
            DnsEntry(container="db", network="back", address=A("10.1.0.6"), names=("db",)),
        ]
    )
    assert table.lookup(A("10.0.0.5"), "db") == (A("10.1.0.6"),)


def test_host_resolvers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# c\nnameserver 10.9.0.53\nsearch x\nnameserver fe80::1%eth0\n")
    assert host_resolvers(conf) == [("10.9.0.53", 53), ("fe80::1", 53)]
    assert host_resolvers(tmp_path / "missing") == []


@contextlib.contextmanager
def fake_upstream() -> Iterator[tuple[str, int]]:
    """A resolver on loopback that answers every A query with one fixed address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            reply = dns.message.make_response(query)
            reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", UPSTREAM_ANSWER))
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()
    finally:
        stop.set()
        thread.join()
        sock.close()


def test_relay_and_servfail_on_loopback() -> None:
    table = DnsTable()
    with fake_upstream() as upstream:
        server = DnsServer(table, [upstream], timeout=0.5)
        address = server.listen("127.0.0.1", 0)
        server.start()
        try:
            reply = dns.query.udp(
                dns.message.make_query("example.org", "A"), address[0], port=address[1], timeout=3
            )
            assert [r.to_text() for r in reply.answer[0]] == [UPSTREAM_ANSWER]
        finally:
            server.stop()
    dead = DnsServer(table, [("127.0.0.1", upstream[1])], timeout=0.2)
    address = dead.listen("127.0.0.1", 0)
    dead.start()
    try:
        reply = dns.query.udp(
            dns.message.make_query("example.org", "A"), address[0], port=address[1], timeout=3
        )
        assert reply.rcode() == dns.rcode.SERVFAIL
    finally:
        dead.stop()


@pytest.mark.engine
def test_queries_from_namespaces_are_scoped(lab: Lab) -> None:
    br_a, net_a = lab.bridge("dnsa")
    br_b, net_b = lab.bridge("dnsb")
    a1 = lab.container("a1", br_a, net_a, 2)
    lab.container("a2", br_a, net_a, 3)
    b1 = lab.container("b1", br_b, net_b, 2)

    def ip(net: IPv4Network, host: int) -> str:
        return str(net.network_address + host)

    table = _table(ip(net_a, 2), ip(net_a, 3), ip(net_b, 2))
    gw_a, gw_b = ip(net_a, 1), ip(net_b, 1)
    with fake_upstream() as upstream:
        server = DnsServer(table, [upstream], timeout=1.0)
        server.listen(gw_a)
        server.listen(gw_b)
        server.start()
        try:
            with netns.enter(a1):
                web = dns.query.udp(dns.message.make_query("web", "A"), gw_a, timeout=3)
                db = dns.query.udp(dns.message.make_query("db", "A"), gw_a, timeout=3)
                outside = dns.query.udp(dns.message.make_query("outside.example", "A"), gw_a, timeout=3)
                over_tcp = dns.query.tcp(dns.message.make_query("proj-web-2", "A"), gw_a, timeout=3)
            with netns.enter(b1):
                from_b = dns.query.udp(dns.message.make_query("db", "A"), gw_b, timeout=3)
                web_from_b = dns.query.udp(dns.message.make_query("web", "A"), gw_b, timeout=3)
            assert sorted(r.to_text() for r in web.answer[0]) == [ip(net_a, 2), ip(net_a, 3)]
            assert db.rcode() == dns.rcode.NXDOMAIN
            assert [r.to_text() for r in outside.answer[0]] == [UPSTREAM_ANSWER]
            assert [r.to_text() for r in over_tcp.answer[0]] == [ip(net_a, 3)]
            assert [r.to_text() for r in from_b.answer[0]] == [ip(net_b, 2)]
            assert web_from_b.rcode() == dns.rcode.NXDOMAIN
            looked_up = lab.run(a1, "nslookup", "proj-web-1", gw_a)
            assert ip(net_a, 2) in looked_up.stdout
            server.update(DnsTable())
            with netns.enter(a1):
                gone = dns.query.udp(dns.message.make_query("web", "A"), gw_a, timeout=3)
            assert [r.to_text() for r in gone.answer[0]] == [UPSTREAM_ANSWER]
        finally:
            server.stop()
    assert server.addresses == []
