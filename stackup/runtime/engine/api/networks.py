"""Network endpoints: create, list, inspect, remove, prune, and `doctor` for leftovers.

Listing reads the state database only, so `ps`-like calls never load the network manager (and
its 33 MiB of netlink and DNS libraries) into an engine that has no network; everything else
goes through `EngineService.networks`, which loads it on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Network, ip_network

from starlette.requests import Request
from starlette.responses import Response

from stackup.errors import InvalidRequest, PlanError
from stackup.runtime.engine.api.routing import (
    Endpoint,
    Param,
    answer,
    blocking,
    engine_of,
    query_bool,
    query_labels,
    read_body,
)
from stackup.runtime.engine.service import EngineService
from stackup.runtime.wire.models import NetworkCreate, NetworkLeftover, PruneResult
from stackup.runtime.wire.network import NetworkDetails
from stackup.runtime.wire.records import EventType, NetworkRecord, labelled_attributes

_NAME = Param("name", where="path", description="network name")
_LABEL = Param("label", description="key or key=value", repeated=True)


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


def ipv4_subnet(body: NetworkCreate) -> IPv4Network | None:
    """The one IPv4 subnet a network may ask for (a bridge here has one address range)."""
    try:
        subnets = [ip_network(s, strict=False) for s in body.subnets]
    except ValueError as exc:
        raise InvalidRequest(f"network {body.name}: {exc}") from exc
    if any(not isinstance(s, IPv4Network) for s in subnets):
        raise PlanError(f"network {body.name}: IPv6 subnets are not supported")
    if len(subnets) > 1:
        raise PlanError(f"network {body.name}: one subnet per network, got {', '.join(body.subnets)}")
    return next((s for s in subnets if isinstance(s, IPv4Network)), None)


def _matches(record: NetworkRecord, wanted: Mapping[str, str | None]) -> bool:
    return all(k in record.labels and v in (None, record.labels[k]) for k, v in wanted.items())


def create_network(engine: EngineService, body: NetworkCreate) -> NetworkRecord:
    record = engine.networks.get().create_network(
        body.name, labels=body.labels, internal=body.internal, subnet=ipv4_subnet(body), driver=body.driver
    )
    attributes = labelled_attributes(record.name, record.labels)
    engine.events.publish(EventType.NETWORK, "create", record.name, attributes)
    return record


def remove_network(engine: EngineService, name: str, force: bool) -> None:
    labels = next((n.labels for n in engine.networks.get().list_networks() if n.name == name), {})
    engine.networks.get().remove_network(name, force=force)
    engine.events.publish(EventType.NETWORK, "destroy", name, labelled_attributes(name, labels))


def prune_networks(engine: EngineService, labels: Mapping[str, str | None]) -> PruneResult:
    removed = engine.networks.get().prune(labels)
    for name in removed:
        engine.events.publish(EventType.NETWORK, "destroy", name)
    return PruneResult(removed=tuple(removed))


def doctor(engine: EngineService, fix: bool) -> list[NetworkLeftover]:
    return [
        NetworkLeftover(kind=str(o.kind), name=o.name, foreign=o.foreign, removed=o.removed)
        for o in engine.networks.get().doctor(fix=fix)
    ]


async def create(request: Request) -> Response:
    body = await read_body(request, NetworkCreate)
    return answer(await blocking(create_network, engine_of(request), body), status_code=201)


async def list_all(request: Request) -> Response:
    wanted = query_labels(request)
    records = await blocking(engine_of(request).state.list_networks)
    return answer([r for r in records if _matches(r, wanted)])


async def inspect(request: Request) -> Response:
    networks = engine_of(request).networks
    return answer(await blocking(lambda: networks.get().inspect_network(_name(request))))


async def remove(request: Request) -> Response:
    await blocking(remove_network, engine_of(request), _name(request), query_bool(request, "force"))
    return answer(None)


async def prune(request: Request) -> Response:
    return answer(await blocking(prune_networks, engine_of(request), query_labels(request)))


async def leftovers(request: Request) -> Response:
    return answer(await blocking(doctor, engine_of(request), False))


async def fix_leftovers(request: Request) -> Response:
    return answer(await blocking(doctor, engine_of(request), query_bool(request, "fix")))


ENDPOINTS = [
    Endpoint("POST", "/networks", create, "Create a bridge network", NetworkCreate, NetworkRecord),
    Endpoint(
        "GET",
        "/networks",
        list_all,
        "List networks",
        answer=NetworkRecord,
        answer_is_list=True,
        params=(_LABEL,),
    ),
    Endpoint(
        "POST",
        "/networks/prune",
        prune,
        "Remove networks no container is attached to",
        answer=PruneResult,
        params=(_LABEL,),
    ),
    Endpoint(
        "GET",
        "/networks/{name}",
        inspect,
        "A network, its wiring and endpoints",
        answer=NetworkDetails,
        params=(_NAME,),
    ),
    Endpoint(
        "DELETE",
        "/networks/{name}",
        remove,
        "Remove a network (force: even with containers attached)",
        params=(_NAME, Param("force", "boolean")),
    ),
    Endpoint(
        "GET",
        "/doctor",
        leftovers,
        "Bridges, veths, namespaces and firewall state no record owns",
        answer=NetworkLeftover,
        answer_is_list=True,
    ),
    Endpoint(
        "POST",
        "/doctor",
        fix_leftovers,
        "The same, removing this root's leftovers with fix=true",
        answer=NetworkLeftover,
        answer_is_list=True,
        params=(Param("fix", "boolean"),),
    ),
]
