"""Pure IPAM: subnet choice and address allocation tables."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from stackup.errors import PlanError, RuntimeFailure
from stackup.net.ipam import DEFAULT_POOLS, AddressPool, Ipam, Leases, check_overlaps, choose_subnet

N = IPv4Network
A = IPv4Address


@pytest.mark.parametrize(
    ("in_use", "routes", "expected"),
    [
        (set(), [], "172.17.0.0/16"),
        ({N("172.17.0.0/16")}, [], "172.18.0.0/16"),
        (set(), [N("0.0.0.0/0"), N("172.17.5.0/24")], "172.18.0.0/16"),
        ({N(f"172.{n}.0.0/16") for n in range(17, 32)}, [], "192.168.0.0/20"),
        ({N(f"172.{n}.0.0/16") for n in range(17, 32)}, [N("192.168.1.0/24")], "192.168.16.0/20"),
        (set(), [N("172.16.0.0/12")], "192.168.0.0/20"),
    ],
)
def test_choose_subnet(in_use: set[IPv4Network], routes: list[IPv4Network], expected: str) -> None:
    assert choose_subnet(DEFAULT_POOLS, in_use, routes) == N(expected)


def test_choose_subnet_exhausted() -> None:
    pool = AddressPool(base=N("10.9.0.0/23"), size=24)
    with pytest.raises(RuntimeFailure, match="no free subnet"):
        choose_subnet([pool], {N("10.9.0.0/24")}, [N("10.9.1.128/25")])


def test_pool_rejects_impossible_split() -> None:
    with pytest.raises(ValueError, match="cannot be split"):
        AddressPool(base=N("10.0.0.0/16"), size=8)


def test_check_overlaps_names_both() -> None:
    check_overlaps({"a": N("10.1.0.0/24"), "b": N("10.2.0.0/24")})
    with pytest.raises(PlanError, match=r"'back'.*'front'"):
        check_overlaps({"front": N("10.1.0.0/16"), "back": N("10.1.2.0/24")})


def test_sequential_allocation_skips_gateway_and_does_not_reuse_at_once() -> None:
    ipam = Ipam(N("10.0.0.0/29"))
    assert ipam.gateway == A("10.0.0.1")
    got = [ipam.allocate() for _ in range(5)]
    assert got == [A(f"10.0.0.{n}") for n in range(2, 7)]
    with pytest.raises(RuntimeFailure, match="no free address"):
        ipam.allocate()
    ipam.release(A("10.0.0.3"))
    ipam.release(A("10.0.0.3"))  # idempotent
    assert ipam.allocate() == A("10.0.0.3")


def test_release_then_next_goes_forward() -> None:
    ipam = Ipam(N("10.0.0.0/24"))
    first, second = ipam.allocate(), ipam.allocate()
    ipam.release(first)
    assert ipam.allocate() == second + 1


@pytest.mark.parametrize(
    ("requested", "error", "message"),
    [
        ("10.0.1.5", PlanError, "outside subnet"),
        ("10.0.0.1", RuntimeFailure, "is the gateway"),
        ("10.0.0.0", RuntimeFailure, "network or broadcast"),
        ("10.0.0.255", RuntimeFailure, "network or broadcast"),
        ("10.0.0.9", RuntimeFailure, "reserved"),
        ("10.0.0.7", RuntimeFailure, "already in use"),
    ],
)
def test_static_address_errors(requested: str, error: type[Exception], message: str) -> None:
    ipam = Ipam(N("10.0.0.0/24"), reserved=[A("10.0.0.9")])
    ipam.allocate(A("10.0.0.7"))
    with pytest.raises(error, match=message):
        ipam.allocate(A(requested))


def test_ip_range_and_custom_gateway() -> None:
    ipam = Ipam(N("10.0.0.0/24"), gateway=A("10.0.0.254"), ip_range=N("10.0.0.128/30"))
    assert [ipam.allocate() for _ in range(4)] == [
        A("10.0.0.128"),
        A("10.0.0.129"),
        A("10.0.0.130"),
        A("10.0.0.131"),
    ]
    assert ipam.allocate(A("10.0.0.20")) == A("10.0.0.20")  # static may be outside ip_range


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gateway": A("10.1.0.1")}, "not a host address"),
        ({"ip_range": N("10.1.0.0/28")}, "not inside subnet"),
        ({"reserved": [A("10.1.0.1")]}, "outside subnet"),
    ],
)
def test_bad_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        Ipam(N("10.0.0.0/24"), **kwargs)  # type: ignore[arg-type]


def test_leases_round_trip_as_data() -> None:
    ipam = Ipam(N("10.0.0.0/24"))
    ipam.allocate()
    ipam.allocate(A("10.0.0.50"))
    saved = Leases.model_validate_json(ipam.leases.model_dump_json())
    restored = Ipam(N("10.0.0.0/24"), leases=saved)
    assert restored.leases == ipam.leases
    assert restored.allocate() == A("10.0.0.3")
    with pytest.raises(RuntimeFailure):
        restored.allocate(A("10.0.0.50"))
