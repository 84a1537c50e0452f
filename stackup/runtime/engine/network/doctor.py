"""Finding what the network layer left on the host that no record owns, and removing it.

Interface names alone cannot say which engine root made a link: every root's bridges and veths
start with `stk`, and a test run with its own STACKUP_ROOT may be using its links right now. So
the manager tags each link it makes with the interface alias `stackup:<table name>` (the table
name is a hash of the root) and only links carrying *this* root's tag are removed by `fix`.
Untagged `stk*` links and other roots' tables are reported as foreign and left alone unless the
caller explicitly asks for them too (a host with one engine, cleaning up after crashed tests).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import partial
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from stackup.errors import RuntimeFailure
from stackup.net import bridge, firewall, names, netns
from stackup.runtime.engine.network.foreign import ForeignFilter

_TABLE = re.compile(r"^[A-Za-z0-9_]+$")


class OrphanKind(StrEnum):
    """What kind of leftover a finding is."""

    BRIDGE = "bridge"
    VETH = "veth"
    NETNS = "netns"
    NFT_TABLE = "nft-table"
    FOREIGN_RULE = "foreign-rule"


class Orphan(BaseModel):
    """One leftover; `foreign` when it may belong to another engine root."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: OrphanKind
    name: str
    foreign: bool = False
    removed: bool = False


def tag_of(table: str) -> str:
    """The interface alias marking links made by the root whose firewall table is `table`."""
    return f"stackup:{table}"


def tag_link(name: str, tag: str) -> None:
    """Mark a link as ours (best effort is not enough: doctor relies on it, so failures raise)."""
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if found:
                ipr.link("set", index=found[0], ifalias=tag)
    except NetlinkError as exc:
        raise RuntimeFailure(f"cannot tag link {name}: {exc}") from exc


def _links() -> dict[str, tuple[str, str | None]]:
    """Every `stk*` link: name -> (kind, alias)."""
    found: dict[str, tuple[str, str | None]] = {}
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get("IFLA_IFNAME")
            if isinstance(name, str) and names.is_ours(name):
                kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or "unknown"
                alias = link.get("IFLA_IFALIAS")
                found[name] = (str(kind), alias if isinstance(alias, str) else None)
    return found


def find_orphans(
    *,
    table: str,
    netns_dir: Path,
    owned_links: Iterable[str],
    owned_netns: Iterable[Path],
    table_needed: bool,
    foreign_filter: ForeignFilter,
    fix: bool = False,
    fix_foreign: bool = False,
) -> list[Orphan]:
    """Every leftover, removing (with `fix`) this root's and (with `fix_foreign`) the others."""
    tag = tag_of(table)
    keep_links = set(owned_links)
    keep_netns = {Path(p) for p in owned_netns}
    findings: list[Orphan] = []

    def report(kind: OrphanKind, name: str, foreign: bool, remove: Callable[[], None]) -> None:
        removed = False
        if (fix and not foreign) or (fix_foreign and foreign):
            with contextlib.suppress(RuntimeFailure):
                remove()
                removed = True
        findings.append(Orphan(kind=kind, name=name, foreign=foreign, removed=removed))

    for name, (kind, alias) in sorted(_links().items()):
        if name in keep_links:
            continue
        if kind == "bridge":
            report(OrphanKind.BRIDGE, name, alias != tag, partial(bridge.delete_bridge, name))
        elif kind == "veth":
            report(OrphanKind.VETH, name, alias != tag, partial(bridge.detach, name))
    if netns_dir.is_dir():
        for path in sorted(netns_dir.iterdir()):
            if path not in keep_netns:
                report(OrphanKind.NETNS, str(path), False, partial(netns.delete, path))
    for other in firewall.list_tables():
        if other != table:
            report(OrphanKind.NFT_TABLE, other, True, partial(_drop_table, other))
        elif not table_needed:
            report(OrphanKind.NFT_TABLE, other, False, partial(_drop_table, other))
    if not table_needed:
        for rule in foreign_filter.ours(table):
            report(OrphanKind.FOREIGN_RULE, rule, False, partial(foreign_filter.remove, table))
    return findings


def _drop_table(table: str) -> None:
    """Delete another root's (or our stale) table by name; gone already is fine."""
    binary = shutil.which("nft") or "/usr/sbin/nft"
    if not _TABLE.match(table):
        raise RuntimeFailure(f"refusing to delete oddly named nft table {table!r}")
    script = f"table inet {table}\ndelete table inet {table}\n"
    done = subprocess.run([binary, "-f", "-"], input=script, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeFailure(f"cannot delete nft table {table}: {done.stderr.strip()}")
