"""All of stackup's packet filtering and NAT, as one nftables table per STACKUP_ROOT.

Why one table that is rewritten whole: nftables applies a batch atomically, so `sync` renders
the complete desired table and swaps it in one transaction (`table; delete table; table {...}`).
There is no incremental state to drift, a crash mid-way leaves either the old or the new table,
and removing stackup from a host is deleting one table. The batch goes through `nft -f -` (one
exec, about 3-5 ms for any number of rules) rather than python3-nftables, to avoid a Debian-only
binding; the rendering is a pure function so it is tested without a kernel.

Semantics (Docker's, expressed as netavark does with nftables):
- masquerade what a non-internal subnet sends out through any other interface;
- drop forwarding between different stackup bridges (isolation), and anything in or out of an
  internal network's bridge except traffic within it;
- published ports: DNAT on `fib daddr type local` in prerouting and output, so they answer on
  every host address including 127.0.0.1; connections that come from loopback or hairpin back into
  their own subnet are masqueraded so replies return through the host. Loopback DNAT needs
  `route_localnet=1` on the bridge, which `bridge.ensure_bridge` sets;
- drop traffic routed into a bridge from outside unless it was DNAT'ed or is a reply.
Our `accept` verdicts cannot override another table's drop (e.g. a FORWARD policy DROP left by
Docker); our drops are final.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from stackup.errors import RuntimeFailure
from stackup.net import names


class Proto(StrEnum):
    """Transport protocol of a published port."""

    TCP = "tcp"
    UDP = "udp"


class NetRule(BaseModel):
    """One stack network as the firewall sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bridge: str
    subnet: IPv4Network
    internal: bool = False

    @field_validator("bridge")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return names.check_ifname(value)


class PortRule(BaseModel):
    """One published port. `host_ip` None (or 0.0.0.0) means every local address."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host_ip: IPv4Address | None = None
    host_port: int
    proto: Proto = Proto.TCP
    container_ip: IPv4Address
    container_port: int

    @field_validator("host_port", "container_port")
    @classmethod
    def _port_range(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError(f"port {value} is outside 1-65535")
        return value


def _set(name: str, members: list[str]) -> str:
    """A named set of interface names; nft rejects an empty `elements = {}`, so omit it then."""
    quoted = ", ".join(f'"{member}"' for member in members)
    elements = f"elements = {{ {quoted} }}; "
    return f"  set {name} {{ type ifname; {elements if members else ''}}}"


def render(table: str, networks: list[NetRule], ports: list[PortRule]) -> str:
    """The whole table as an nft script that replaces any previous version atomically."""
    bridges = sorted({net.bridge for net in networks})
    internal = sorted({net.bridge for net in networks if net.internal})
    lines = [f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{"]
    lines += [_set("bridges", bridges), _set("internal", internal)]
    # nft cannot compare iifname with oifname, so traffic within a bridge is one rule per bridge.
    lines += [
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        *(f'    iifname "{bridge}" oifname "{bridge}" accept' for bridge in bridges),
        "    oifname @internal drop",
        "    iifname @internal drop",
        "    ct state established,related oifname @bridges accept",
        "    ct state established,related iifname @bridges accept",
        "    ct status dnat oifname @bridges accept",
        f'    iifname @bridges oifname "{names.BRIDGE_PREFIX}*" drop',
        "    oifname @bridges drop",
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        "    meta nfproto ipv4 fib daddr type local jump hostports",
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        "    meta nfproto ipv4 fib daddr type local jump hostports",
        "  }",
        "  chain hostports {",
    ]
    for port in sorted(ports, key=lambda p: (p.proto, p.host_port, str(p.host_ip))):
        match = f"ip daddr {port.host_ip} " if port.host_ip not in (None, IPv4Address(0)) else ""
        lines.append(
            f"    {match}meta l4proto {port.proto} th dport {port.host_port} "
            f"dnat ip to {port.container_ip}:{port.container_port}"
        )
    lines += [
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        "    oifname @bridges ct status dnat ip saddr 127.0.0.0/8 masquerade",
    ]
    for net in sorted(networks, key=lambda n: n.bridge):
        lines.append(f'    oifname "{net.bridge}" ct status dnat ip saddr {net.subnet} masquerade')
        if not net.internal:
            lines.append(f'    ip saddr {net.subnet} oifname != "{net.bridge}" masquerade')
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def _nft(script: str | None, *args: str) -> str:
    binary = shutil.which("nft") or "/usr/sbin/nft"
    command = [binary, *args] if script is None else [binary, "-f", "-"]
    done = subprocess.run(command, input=script, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeFailure(f"nft failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def list_tables() -> list[str]:
    """Names of every stackup table on the host (any root), for `doctor`."""
    listing = json.loads(_nft(None, "-j", "list", "tables"))
    found = (entry["table"] for entry in listing.get("nftables", []) if "table" in entry)
    ours = (t["name"] for t in found if t.get("family") == "inet")
    return sorted(name for name in ours if name.startswith(names.TABLE_PREFIX))


class Firewall:
    """The firewall state of one STACKUP_ROOT."""

    def __init__(self, root: Path) -> None:
        self.table = names.table_name(root)

    def sync(self, networks: list[NetRule], ports: list[PortRule], *, also: str = "") -> None:
        """Make the table exactly what these networks and ports need, in one transaction;
        `also`: more nft commands for the same transaction (one `nft` process instead of two)."""
        _nft(render(self.table, networks, ports) + also)

    def destroy(self, *, also: str = "") -> None:
        """Remove the table and every rule in it; absent already is fine."""
        _nft(f"table inet {self.table}\ndelete table inet {self.table}\n" + also)
