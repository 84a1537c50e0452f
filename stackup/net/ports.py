"""Published-port conflict checks, done before anything starts.

DNAT does not bind the host port, so a host process listening on it would be silently shadowed
(and a port published twice would go to whichever rule comes first). Before `up` creates
anything the engine asks here: each requested host address/port/protocol is bound once for real,
and if that fails the holder is named from /proc (`/proc/net/{tcp,udp}[6]` inode -> the process
whose fd points at `socket:[inode]`), so the error says `port 8080/tcp is in use by nginx (pid 412)`
rather than just EADDRINUSE.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stackup.net.firewall import Proto

_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"


class PortRequest(BaseModel):
    """A host side of a published port; `host_ip` None means every address."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host_ip: IPv4Address | None = None
    port: int
    proto: Proto = Proto.TCP

    def __str__(self) -> str:
        where = f"{self.host_ip}:" if self.host_ip is not None else ""
        return f"{where}{self.port}/{self.proto}"


class Conflict(BaseModel):
    """Why a request cannot be served, with the holding process when /proc tells."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request: PortRequest
    reason: str
    holder_pid: int | None = None
    holder_name: str | None = None

    def __str__(self) -> str:
        holder = f" by {self.holder_name} (pid {self.holder_pid})" if self.holder_pid is not None else ""
        return f"port {self.request} {self.reason}{holder}"


def check_host_ports(requests: Iterable[PortRequest]) -> list[Conflict]:
    """Every request that cannot be bound now, or that another request already claims."""
    conflicts: list[Conflict] = []
    seen: list[PortRequest] = []
    for request in requests:
        if any(_overlap(request, earlier) for earlier in seen):
            conflicts.append(Conflict(request=request, reason="is published twice"))
            continue
        seen.append(request)
        failure = _try_bind(request)
        if failure is not None:
            pid, name = find_holder(request.port, request.proto)
            conflicts.append(Conflict(request=request, reason=failure, holder_pid=pid, holder_name=name))
    return conflicts


def _overlap(one: PortRequest, other: PortRequest) -> bool:
    """Same port and protocol, on the same address or where either means every address."""
    same_ip = one.host_ip is None or other.host_ip is None or one.host_ip == other.host_ip
    return one.port == other.port and one.proto is other.proto and same_ip


def _try_bind(request: PortRequest) -> str | None:
    """None if the port can be bound; otherwise why not.

    SO_REUSEADDR for TCP only, so sockets in TIME_WAIT do not count as holders; for UDP it would
    let us share a port with another reuse-enabled socket and hide the conflict.
    """
    kind = socket.SOCK_STREAM if request.proto is Proto.TCP else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if request.proto is Proto.TCP:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((str(request.host_ip or "0.0.0.0"), request.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "is in use"
            if exc.errno == errno.EADDRNOTAVAIL:
                return "names an address this host does not have"
            if exc.errno == errno.EACCES:
                return "needs privileges to bind"
            return f"cannot be bound: {exc.strerror}"
    return None


def _socket_inodes(port: int, proto: Proto, proc: Path) -> set[str]:
    """Inodes of sockets bound to `port` that hold it (TCP listeners, unconnected UDP)."""
    wanted = _TCP_LISTEN if proto is Proto.TCP else _UDP_UNCONNECTED
    inodes: set[str] = set()
    for table in (f"{proto}", f"{proto}6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and state == wanted and inode != "0":
                inodes.add(inode)
    return inodes


def find_holder(port: int, proto: Proto, proc: Path = Path("/proc")) -> tuple[int | None, str | None]:
    """(pid, command name) of a process holding the port, or (None, None) if not visible."""
    inodes = _socket_inodes(port, proto, proc)
    if not inodes:
        return None, None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(entry.name), (entry / "comm").read_text().strip()
        except OSError:  # the process exited or is not ours to inspect
            continue
    return None, None
