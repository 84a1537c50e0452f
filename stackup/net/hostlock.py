"""One machine-wide lock around choosing a subnet and giving its bridge the address.

Engines of different roots (tests, CI, a second root of a user's) share the host's address
space. Each picks the first subnet that no host route covers, so two engines picking at the same
moment could both take the same one; the second then fails to listen for DNS on the gateway
(EADDRINUSE), found by the chaos run with helpers' engines alongside. An exclusive `flock` on a
file under /run/lock serialises pick-and-claim across processes; the kernel drops it when the
holder dies, so a killed engine never wedges the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_PATH = Path("/run/lock/stackup-subnets.lock")


@contextlib.contextmanager
def subnet_claim(path: Path = LOCK_PATH) -> Iterator[None]:
    """Hold the machine-wide subnet lock for the block (blocking; claims take milliseconds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
