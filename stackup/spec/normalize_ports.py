"""Port short syntax -> compose-go's long form, one entry per container port.

`[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`, with ranges on either side, exactly as
docker/go-connections `nat.ParsePortSpec` reads it: `"8000-8002:8000-8002"` is three entries;
a single container port with a host range (`"8000-8010:80"`) keeps the range as `published`
so the engine picks a free port from it. Entries come out sorted by `port/proto` as compose-go
sorts them, so `config` output matches.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from stackup.spec.models_base import scalar_text
from stackup.spec.normalize_values import describe

_PROTOCOLS = ("tcp", "udp", "sctp")


def _port_range(text: str, what: str) -> tuple[int, int]:
    if not text:
        raise ValueError(f"empty {what}")
    low, dash, high = text.partition("-")
    try:
        start = _port_number(low)
        end = _port_number(high) if dash else start
    except ValueError:
        raise ValueError(f'invalid {what} "{text}"') from None
    if end < start:
        raise ValueError(f'invalid {what} range "{text}": end is before start')
    return start, end


def _port_number(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    number = int(text)
    if number > 65535:
        raise ValueError(text)
    return number


def _split(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_port(value: object) -> list[dict[str, Any]]:
    """One short-syntax port (string or int) -> long-form entries; ValueError when malformed."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a port string, number or mapping, got {describe(value)}")
    raw = scalar_text(value)
    try:
        return _parse(raw)
    except ValueError as exc:
        raise ValueError(f'invalid port "{raw}": {exc}') from None


def _parse(raw: str) -> list[dict[str, Any]]:
    host_ip, host_port, container = _split(raw)
    port_text, slash, proto = container.partition("/")
    proto = (proto or "tcp").lower() if slash else "tcp"
    if proto not in _PROTOCOLS:
        raise ValueError(f'unknown protocol "{proto}" (use tcp, udp or sctp)')
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise ValueError(f'invalid IP address "{host_ip}"') from None
    start, end = _port_range(port_text, "container port")
    host_start = host_end = 0
    if host_port:
        host_start, host_end = _port_range(host_port, "host port")
        if end - start != host_end - host_start and end != start:
            raise ValueError("the host and container port ranges have different lengths")
    entries: list[tuple[str, dict[str, Any]]] = []
    for offset, target in enumerate(range(start, end + 1)):
        entry: dict[str, Any] = {"mode": "ingress"}
        if host_ip:
            entry["host_ip"] = host_ip
        entry["target"] = target
        if host_port:
            same_length = end - start == host_end - host_start
            entry["published"] = str(host_start + offset) if same_length else host_port
        entry["protocol"] = proto
        entries.append((f"{target}/{proto}", entry))
    entries.sort(key=lambda pair: pair[0])
    return [entry for _, entry in entries]


def port_long(value: dict[str, Any]) -> dict[str, Any]:
    """A long-form port with compose-go's defaults filled in (`mode: ingress`, `protocol: tcp`)."""
    out = dict(value)
    out.setdefault("mode", "ingress")
    out.setdefault("protocol", "tcp")
    target = out.get("target")
    if isinstance(target, str) and target.isdigit():
        out["target"] = int(target)
    published = out.get("published")
    if isinstance(published, int) and not isinstance(published, bool):
        out["published"] = str(published)
    return out
