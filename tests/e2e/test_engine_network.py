"""Networks end to end on the real engine: `stackupd` + runc + conmon + bridges + nftables + DNS.

Containers are made through the planner's `NativeRuntime` where the planner would make them, so
the translation from `ContainerSpec` is covered too. Traffic only goes to loopback and to
addresses on the bridges these tests create; names that exist on another network are answered
NXDOMAIN by the engine's own DNS server, never relayed.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import RuntimeFailure
from stackup.runtime import labels
from stackup.runtime.base import ContainerSpec, NetworkAttachment, NetworkSpec, PortBinding
from stackup.runtime.engine.containers import conmon
from stackup.runtime.native.runtime import NativeRuntime
from tests.e2e._engine import Engine, running_engine, wait_for

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        os.geteuid() != 0 or not Path(conmon.CONMON).exists() or shutil.which("nft") is None,
        reason="needs root, conmon and nft",
    ),
]

SERVE = "echo hello-from-web > /var/www/index.html && exec httpd -f -p 8080 -h /var/www"


@pytest.fixture
def engine(stackup_root: Path) -> Iterator[Engine]:
    with running_engine(stackup_root) as made:
        yield made


def _web(engine: Engine, network: str, *, ports: tuple[PortBinding, ...] = ()) -> str:
    """`web` of project `p<token>`, created and started as `up` would; returns its id."""
    runtime = NativeRuntime(engine.client)
    project = f"p{engine.token}"
    info = runtime.create_container(
        ContainerSpec(
            name=engine.name("web"),
            image="stackup-test/busybox:latest",
            labels={labels.PROJECT: project, labels.SERVICE: "web", labels.CONTAINER_NUMBER: "1"},
            command=("sh", "-c", SERVE),
            networks=(NetworkAttachment(network, aliases=("web", "www")),),
            ports=ports,
        )
    )
    runtime.start_container(info.id)
    wait_for(lambda: engine.exec(info.id, "wget", "-qO-", "http://127.0.0.1:8080/").exit_code == 0, "httpd")
    return info.id


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def test_same_network_talks_by_name_other_network_cannot(engine: Engine) -> None:
    front = NativeRuntime(engine.client).create_network(NetworkSpec(engine.name("front"))).name
    back = engine.network("back")
    web = _web(engine, front)

    client = engine.run("client", "sleep", "300", networks=[{"network": front}])
    for name in ("web", "www", engine.name("web")):
        fetched = engine.exec(client.id, "timeout", "5", "wget", "-qO-", f"http://{name}:8080/")
        assert (fetched.exit_code, fetched.stdout.strip()) == (0, "hello-from-web"), fetched

    outsider = engine.run("outsider", "sleep", "300", networks=[{"network": back}])
    looked_up = engine.exec(outsider.id, "nslookup", "web")
    assert looked_up.exit_code != 0, looked_up
    record = engine.client.inspect_container(web)
    assert record.network is not None
    address = record.network.endpoints[0].address
    reached = engine.exec(outsider.id, "timeout", "3", "wget", "-qO-", f"http://{address}:8080/")
    assert reached.exit_code != 0, reached


def test_published_port_reachable_from_host_and_conflicts_refused_first(engine: Engine) -> None:
    front = engine.network("front")
    web = _web(engine, front, ports=(PortBinding(container_port=8080, host_ip="127.0.0.1"),))
    record = engine.client.inspect_container(web)
    assert record.network is not None and len(record.network.ports) == 1
    published = record.network.ports[0]
    assert (published.container_port, published.host_ip, published.protocol) == (8080, "127.0.0.1", "tcp")
    assert _get(f"http://127.0.0.1:{published.host_port}/").strip() == "hello-from-web"

    before = {r.name for r in engine.client.list_containers()}
    port = {"container_port": 80, "host_port": published.host_port, "host_ip": "127.0.0.1"}
    holder, clash = engine.name("web"), engine.name("clash")
    refused = rf"service {clash}: cannot publish ports: .*published by container {holder}"
    with pytest.raises(RuntimeFailure, match=refused):
        engine.run("clash", "sleep", "1", networks=[{"network": front}], ports=[port])
    assert {r.name for r in engine.client.list_containers()} == before


def test_container_network_mode_shares_the_namespace(engine: Engine) -> None:
    front = engine.network("front")
    web = _web(engine, front)
    sidecar = engine.run("sidecar", "sleep", "300", network_mode=f"container:{web}")
    fetched = engine.exec(sidecar.id, "wget", "-qO-", "http://127.0.0.1:8080/")
    assert fetched.stdout.strip() == "hello-from-web", fetched
    assert sidecar.network is not None and sidecar.network.mode == f"container:{web}"


def test_network_api_inspect_prune_and_doctor(engine: Engine) -> None:
    used = engine.network("used", labels={"purpose": "test"})
    spare = engine.network("spare", labels={"purpose": "test"})
    web = _web(engine, used)
    details = engine.client.inspect_network(used)
    assert [e.container_id for e in details.endpoints] == [web]
    assert {n.name for n in engine.client.list_networks({"purpose": "test"})} == {used, spare}
    assert engine.client.prune_networks({"purpose": "test"}).removed == (spare,)
    with pytest.raises(RuntimeFailure, match="containers attached"):
        engine.client.remove_network(used)
    assert [o for o in engine.client.doctor() if not o.foreign] == []  # other roots may be running


def test_stop_and_start_keep_the_address(engine: Engine) -> None:
    front = engine.network("front")
    web = _web(engine, front)
    before = engine.client.inspect_container(web).network
    engine.client.stop_container(web, timeout_s=1)
    engine.client.start_container(web)
    assert engine.client.inspect_container(web).network == before
    wait_for(lambda: engine.exec(web, "wget", "-qO-", "http://web:8080/").exit_code == 0, "httpd again")
