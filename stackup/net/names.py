"""Deterministic kernel names for the things stackup makes on the host.

Interface names are limited to 15 bytes (IFNAMSIZ - 1), so ids are hashed rather than spelled
out. Every name starts with `stk` so `stackup doctor` can find leftovers of any root without a
database, and the same id always maps to the same name, so a crashed engine can find and remove
what it made before. The hash is blake2b (stable across Python runs, unlike `hash()`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

PREFIX = "stk"
BRIDGE_PREFIX = "stkb"
VETH_PREFIX = "stkv"
TABLE_PREFIX = "stackup_"
IFNAME_MAX = 15

_SAFE_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def short_hash(text: str, length: int) -> str:
    """Hex digest of `text` cut to `length` characters; 11 hex = 44 bits, collisions negligible."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()[:length]


def bridge_name(network_id: str) -> str:
    """Bridge for one stack network, e.g. `stkb3f9a0c1d2e4` (15 chars)."""
    return BRIDGE_PREFIX + short_hash(network_id, IFNAME_MAX - len(BRIDGE_PREFIX))


def veth_name(endpoint_id: str) -> str:
    """Host end of one container's veth on one network (the peer is renamed eth0.. inside)."""
    return VETH_PREFIX + short_hash(endpoint_id, IFNAME_MAX - len(VETH_PREFIX))


def table_name(root: Path) -> str:
    """The one nftables table of a STACKUP_ROOT: two roots on one host never share rules."""
    return TABLE_PREFIX + short_hash(str(root.resolve()), 10)


def is_ours(ifname: str) -> bool:
    """Whether an interface name follows stackup's scheme (for `doctor` and cleanup)."""
    return ifname.startswith(PREFIX) and len(ifname) <= IFNAME_MAX


def check_ifname(ifname: str) -> str:
    """Reject names the kernel would refuse or that could break out of an nft rule's quoting."""
    if not _SAFE_IFNAME.match(ifname):
        raise ValueError(f"invalid interface name {ifname!r} (1-15 of [A-Za-z0-9_.-])")
    return ifname
