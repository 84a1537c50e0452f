"""What the network manager persists beyond the engine's `networks` and `ip_leases` tables.

The engine's state schema records networks (with an opaque `config`) and address leases, which
is enough to know *which* addresses are taken but not how a container is wired: which interface,
which host veth, which names it answers to, which ports point at it. Those rows are what make
`disconnect` work after a crash and `restore` work after a reboot without asking the kernel, so
they live in the same SQLite file (same WAL, same durability) in three tables this module creates
on its own connection, leaving `state.py`'s schema untouched.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.state.sqlite import Database
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.wire.network import Endpoint, NetworkConfig, PortRecord
from stackup.runtime.wire.records import NetworkRecord, NetworkStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS net_endpoints (
    container_id TEXT NOT NULL, network TEXT NOT NULL, ifname TEXT NOT NULL, host_veth TEXT NOT NULL,
    address TEXT NOT NULL, names TEXT NOT NULL, netns TEXT NOT NULL,
    PRIMARY KEY (container_id, network));
CREATE TABLE IF NOT EXISTS net_ports (
    container_id TEXT NOT NULL, host_ip TEXT, host_port INTEGER NOT NULL, proto TEXT NOT NULL,
    container_ip TEXT NOT NULL, container_port INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS net_ports_container ON net_ports (container_id);
CREATE TABLE IF NOT EXISTS net_ipam_cursor (network TEXT PRIMARY KEY, last TEXT NOT NULL);
"""


def config_of(record: NetworkRecord) -> NetworkConfig:
    """The network layer's view of a record."""
    return NetworkConfig.model_validate(record.config)


def ready_config(state: StateStore, name: str) -> NetworkConfig:
    """The config of a network containers may join now (NotFound, or refused while changing)."""
    record = state.get_network(name)
    if record.status is not NetworkStatus.READY:
        raise RuntimeFailure(f"network {name} is {record.status}")
    return config_of(record)


class NetStore(Database):
    """The three tables, on their own connection to the engine's state database."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        super().__init__(path, _SCHEMA, busy_timeout_s=busy_timeout_s)

    # -- endpoints --------------------------------------------------------------------------

    def add_endpoint(self, endpoint: Endpoint) -> None:
        row = endpoint.model_dump(mode="json")
        row["names"] = json.dumps(row["names"])
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO net_endpoints VALUES "
                "(:container_id, :network, :ifname, :host_veth, :address, :names, :netns)",
                row,
            )

    def endpoints(self, *, container_id: str | None = None, network: str | None = None) -> list[Endpoint]:
        """Endpoints in interface order per container (eth0 first), filtered as asked."""
        sql, args = "SELECT * FROM net_endpoints WHERE 1=1", list[str]()
        if container_id is not None:
            sql, args = sql + " AND container_id = ?", [*args, container_id]
        if network is not None:
            sql, args = sql + " AND network = ?", [*args, network]
        rows = self._query(sql + " ORDER BY container_id, length(ifname), ifname", tuple(args))
        return [Endpoint.model_validate({**dict(r), "names": json.loads(r["names"])}) for r in rows]

    def drop_endpoint(self, container_id: str, network: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM net_endpoints WHERE container_id = ? AND network = ?", (container_id, network)
            )

    # -- ports ------------------------------------------------------------------------------

    def set_ports(self, container_id: str, ports: list[PortRecord]) -> None:
        """Replace a container's published ports in one transaction."""
        with self._tx() as db:
            db.execute("DELETE FROM net_ports WHERE container_id = ?", (container_id,))
            for port in ports:
                row = port.model_dump(mode="json")
                db.execute(
                    "INSERT INTO net_ports VALUES "
                    "(:container_id, :host_ip, :host_port, :proto, :container_ip, :container_port)",
                    row,
                )

    def ports(self, container_id: str | None = None) -> list[PortRecord]:
        where, args = ("", ()) if container_id is None else (" WHERE container_id = ?", (container_id,))
        rows = self._query(f"SELECT * FROM net_ports{where} ORDER BY container_id, proto, host_port", args)
        return [PortRecord.model_validate(dict(r)) for r in rows]

    # -- ipam cursor ------------------------------------------------------------------------

    def cursor(self, network: str) -> IPv4Address | None:
        """The last address handed out dynamically on `network` (so it is not reused at once)."""
        rows = self._query("SELECT last FROM net_ipam_cursor WHERE network = ?", (network,))
        return IPv4Address(rows[0]["last"]) if rows else None

    def set_cursor(self, network: str, last: IPv4Address | None) -> None:
        with self._tx() as db:
            if last is None:
                db.execute("DELETE FROM net_ipam_cursor WHERE network = ?", (network,))
            else:
                db.execute("INSERT OR REPLACE INTO net_ipam_cursor VALUES (?, ?)", (network, str(last)))

    def forget_network(self, network: str) -> None:
        """Drop every row about a network that is being removed."""
        with self._tx() as db:
            db.execute("DELETE FROM net_endpoints WHERE network = ?", (network,))
            db.execute("DELETE FROM net_ipam_cursor WHERE network = ?", (network,))
