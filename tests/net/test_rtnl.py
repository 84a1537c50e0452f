"""rtnl's messages on the wire, without a kernel: what pyroute2 encodes for each request and how
acks decode.

The expected bytes are what the hand-packed encoder this module used to have sent (its layout was
checked against the kernel by the lab tests), so a pyroute2 upgrade that changes a layout shows up
here rather than as a refusal on the per-container path.
"""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Interface

import pytest

from stackup.net import rtnl

SEQ = 42

WIRE = [
    pytest.param(
        rtnl.veth_add(
            "stkvabc", "eth0", master=7, netns_fd=9, peer_mac="02:42:0a:00:00:09", alias="stackup:x"
        ),
        "8c000000100005062a00000000000000000000000000000001000000010000000c00030073746b766162630008000a00"
        "070000000e001400737461636b75703a7800000048001200090001007665746800000000380002003400010000000000"
        "00000000000000000000000009000300657468300000000008001c00090000000a00010002420a0000090000",
        id="veth_add",
    ),
    pytest.param(
        rtnl.link_set("stkvabc", alias="stackup:tag"),
        "3c000000130005002a00000000000000000000000000000000000000000000000c00030073746b766162630010001400"
        "737461636b75703a74616700",
        id="alias",
    ),
    pytest.param(
        rtnl.link_set(1, up=True),
        "20000000130005002a0000000000000000000000010000000100000001000000",
        id="up",
    ),
    pytest.param(
        rtnl.link_set(5, inet_conf={rtnl.IPV4_DEVCONF_ARP_NOTIFY: 1, rtnl.IPV4_DEVCONF_RP_FILTER: 2}),
        "3c000000130005002a00000000000000000000000500000000000000000000001c001a00180002001400010008001600"
        "010000000800080002000000",
        id="inet_conf",
    ),
    pytest.param(
        rtnl.addr_add(5, IPv4Interface("10.1.2.3/22")),
        "28000000140005062a000000000000000216000005000000080002000a010203080001000a010203",
        id="addr_add",
    ),
    pytest.param(
        rtnl.default_route_add(IPv4Address("10.1.0.1")),
        "24000000180005062a0000000000000002000000fe04000100000000080005000a010001",
        id="default_route_add",
    ),
    pytest.param(
        rtnl.link_del("stkvabc"),
        "2c000000110005002a00000000000000000000000000000000000000000000000c00030073746b7661626300",
        id="link_del",
    ),
]


@pytest.mark.parametrize(("request_", "wire"), WIRE)
def test_requests_encode_to_the_kernel_layout(request_: rtnl.Request, wire: str) -> None:
    assert rtnl._encode(request_, SEQ).hex() == wire
    assert rtnl._encode(request_, SEQ).hex() == wire  # encoding again gives the same bytes


def test_devconf_ids_are_the_kernel_ones() -> None:
    assert (rtnl.IPV4_DEVCONF_RP_FILTER, rtnl.IPV4_DEVCONF_ARP_NOTIFY) == (8, 22)  # <linux/ip.h>
    with pytest.raises(ValueError, match="IPV4_DEVCONF"):
        rtnl.link_set(5, inet_conf={0: 1})


def test_acks_decode_code_and_extended_ack_reason() -> None:
    # Two replies of a kernel to two RTM_NEWADDR of the same address on a capped, ext-ack socket.
    accepted = bytes.fromhex("2400000002000001070000005d3c00000000000028000000140005060700000000000000")
    refused = bytes.fromhex(
        "4800000002000003080000005d3c0000efffffff2800000014000506080000000000000023000100697076343a2041"
        "64647265737320616c72656164792061737369676e65640000"
    )
    assert list(rtnl._acks(accepted + refused)) == [
        (7, 0, ""),
        (8, errno.EEXIST, "ipv4: Address already assigned"),
    ]


def test_failure_names_the_request_and_the_reason() -> None:
    failure = rtnl.NetlinkFailure(errno.ENODEV, "delete link x", "", 3)
    assert str(failure) == "[Errno 19] delete link x: No such device"
    assert failure.position == 3 and rtnl.gone(failure)
    assert "(ipv4: nope)" in str(rtnl.NetlinkFailure(errno.EEXIST, "add", "ipv4: nope"))
