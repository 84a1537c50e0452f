"""The pure parts of wiring networks and the supervisor into the engine: the planner's spec to
the engine's request, the health check merge, network-mode refusals, the state migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stackup.errors import PlanError
from stackup.planner.specs import _healthcheck
from stackup.runtime import labels
from stackup.runtime.base import ContainerSpec, HealthcheckSpec, NetworkAttachment, PortBinding
from stackup.runtime.engine.containers.blueprint import healthcheck
from stackup.runtime.engine.containers.networking import unwired
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.engine.supervision.health import HealthConfig as Resolved
from stackup.runtime.native.runtime import create_request
from stackup.runtime.wire.imageconfig import HealthConfig, ImageConfig
from stackup.runtime.wire.images import Image
from stackup.runtime.wire.models import ContainerCreate
from stackup.spec.models_parts import Healthcheck
from stackup.units import SECOND


def _spec(**fields: object) -> ContainerSpec:
    base: dict[str, object] = {
        "name": "shop-web-1",
        "image": "img",
        "labels": {labels.PROJECT: "shop", labels.SERVICE: "web", labels.CONTAINER_NUMBER: "1"},
    }
    return ContainerSpec(**(base | fields))  # type: ignore[arg-type]


def test_create_request_carries_networks_ports_restart_and_check() -> None:
    spec = _spec(
        name="custom",
        hostname="h",
        networks=(NetworkAttachment("shop_default", aliases=("web", "api"), ipv4_address="10.5.0.9"),),
        ports=(PortBinding(80, 8080, "127.0.0.1"), PortBinding(53, None, "", "udp")),
        restart="on-failure:2",
        healthcheck=HealthcheckSpec(test=("CMD", "true"), interval_s=0.5),
        extra_hosts=(("db", "10.0.0.2"), ("v6", "::1")),
    )
    request = ContainerCreate.model_validate(create_request(spec))
    assert request.network_mode == "bridge" and request.hostname == "h"
    (network,) = request.networks
    assert (network.network, network.ipv4_address) == ("shop_default", "10.5.0.9")
    assert network.aliases == ("web", "api", "shop-web-1")  # Compose's replica name: container_name is set
    assert [(p.container_port, p.host_port, p.host_ip, p.protocol) for p in request.ports] == [
        (80, 8080, "127.0.0.1", "tcp"),
        (53, None, "", "udp"),
    ]
    assert request.restart == "on-failure:2"
    assert request.healthcheck == HealthConfig(test=("CMD", "true"), interval=SECOND // 2)
    hosts = [(h.hostname, h.address) for h in request.options.extra_hosts]
    assert hosts == [("db", "10.0.0.2"), ("v6", "::1")]


def test_service_network_mode_must_be_resolved_first() -> None:
    with pytest.raises(ValueError, match="resolved"):
        create_request(_spec(network_mode="service:db"))
    assert create_request(_spec(network_mode="container:abc"))["network_mode"] == "container:abc"


def test_planner_check_keeps_unset_fields_unset_and_disable_disables_the_image() -> None:
    assert _healthcheck(Healthcheck(disable=True, test=["CMD", "x"])) == HealthcheckSpec(test=("NONE",))
    partial = _healthcheck(Healthcheck.model_validate({"interval": "2s"}))
    assert partial == HealthcheckSpec(interval_s=2.0)


def _image(check: HealthConfig | None) -> Image:
    return Image.model_construct(config=ImageConfig(healthcheck=check))


def test_request_check_is_laid_over_the_image_check() -> None:
    image = _image(HealthConfig(test=("CMD", "probe"), interval=10 * SECOND, retries=5))
    own = ContainerCreate(name="a", image="i", healthcheck=HealthConfig(interval=SECOND))
    merged = healthcheck(own, image)
    assert merged == HealthConfig(test=("CMD", "probe"), interval=SECOND, retries=5)
    disabled = healthcheck(
        ContainerCreate(name="a", image="i", healthcheck=HealthConfig(test=("NONE",))), image
    )
    assert disabled is not None and Resolved.merged(disabled, None) is None
    assert healthcheck(ContainerCreate(name="a", image="i"), _image(None)) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"network_mode": "host", "networks": [{"network": "n"}]}, "cannot be joined"),
        ({"ports": [{"container_port": 80}]}, "need a network"),
    ],
)
def test_network_mode_refusals(fields: dict[str, object], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        unwired(ContainerCreate.model_validate({"name": "a", "image": "i", **fields}))


def test_host_mode_discards_ports_like_docker() -> None:
    request = ContainerCreate(name="a", image="i", network_mode="host", ports=[{"container_port": 80}])
    recorded = unwired(request)
    assert recorded is not None and (recorded.mode, recorded.ports) == ("host", ())


def test_an_old_database_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE containers (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image TEXT NOT NULL,"
            " image_id TEXT NOT NULL, project TEXT, service TEXT, number INTEGER, labels TEXT NOT NULL,"
            " config TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER, exit_code INTEGER,"
            " created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,"
            " restart_count INTEGER NOT NULL DEFAULT 0, health TEXT)"
        )
        db.execute(
            "INSERT INTO containers VALUES ('c1', 'old', 'i', 'sha', NULL, NULL, NULL, '{}', '{}', 'exited',"
            " NULL, 0, '2024-01-01T00:00:00+00:00', NULL, NULL, 0, NULL)"
        )
    db.close()
    store = StateStore(path)
    try:
        record = store.get_container("c1")
        assert (record.restart, record.healthcheck, record.manually_stopped, record.network) == (
            "no",
            None,
            False,
            None,
        )
    finally:
        store.close()
