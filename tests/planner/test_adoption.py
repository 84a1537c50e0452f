"""Adopting containers Docker Compose made: `observe` reads Compose's labels, `reconcile` compares
the spec the runtime read back (`ContainerInfo.spec`) with the one it wants. Hand-made infos in,
golden `str(plan)` out, as for stackup's own containers."""

from __future__ import annotations

from dataclasses import replace

from stackup.planner.adoption import comparable
from stackup.planner.observed import Observed
from stackup.planner.options import ReconcileOptions
from stackup.planner.reconcile import reconcile
from stackup.planner.specs import container_spec
from stackup.planner.teardown import plan_down
from stackup.runtime import labels as lbl
from stackup.runtime.base import ContainerInfo, ContainerSpec, ContainerState, ImageInfo, NetworkInfo
from tests.planner._build import project

IMAGE_ID = "sha256:" + "1" * 64
SERVICES = {
    "db": {"image": "busybox:1", "command": ["sleep", "600"], "healthcheck": {"test": ["CMD", "true"]}},
    "web": {
        "image": "busybox:1",
        "environment": {"MODE": "one"},
        "ports": [{"target": 80, "published": "8080", "host_ip": "127.0.0.1"}],
        "depends_on": {"db": {"condition": "service_started"}},
    },
}


def compose_labels(service: str) -> dict[str, str]:
    """What docker-compose 1.29 writes (no stackup label at all)."""
    return {
        lbl.COMPOSE_PROJECT: "demo",
        lbl.COMPOSE_SERVICE: service,
        lbl.COMPOSE_CONTAINER_NUMBER: "1",
        lbl.COMPOSE_ONEOFF: "False",
        lbl.COMPOSE_CONFIG_HASH: "f" * 64,
        lbl.COMPOSE_VERSION: "1.29.2",
    }


def read_back(service: str, **changed: object) -> ContainerSpec:
    """The spec a runtime reads back from a container Compose made from `SERVICES` (then edited)."""
    proj = project(SERVICES)
    made = container_spec(proj, service, proj.services[service], 1, labels={}, referenced_files={})
    return replace(made, name=f"demo_{service}_1", stop_grace_period_s=10.0, **changed)  # type: ignore[arg-type]


def observed(**specs: ContainerSpec) -> Observed:
    infos = [
        ContainerInfo(
            id=f"{name}-id",
            name=f"demo_{name}_1",
            image="busybox:1",
            image_id=IMAGE_ID,
            labels=compose_labels(name),
            state=ContainerState.RUNNING,
            spec=spec,
        )
        for name, spec in specs.items()
    ]
    networks = [
        NetworkInfo("demo_default", "n1", {lbl.COMPOSE_PROJECT: "demo", lbl.COMPOSE_NETWORK: "default"})
    ]
    return Observed.build("demo", infos, networks, (), [ImageInfo(IMAGE_ID, ("busybox:1",))])


def test_compose_labels_make_the_containers_the_projects() -> None:
    seen = observed(db=read_back("db"), web=read_back("web"))
    assert [(c.service, c.number, c.oneoff, c.config_hash) for c in seen.containers] == [
        ("db", 1, False, ""),
        ("web", 1, False, ""),
    ]
    assert seen.networks["demo_default"].project == "demo"
    info = ContainerInfo(id="x", name="demo_db_1", image="busybox:1", labels=compose_labels("db"))
    assert Observed.build("other", [info]).containers == ()


def test_an_equivalent_compose_stack_is_adopted_unchanged() -> None:
    plan = reconcile(
        project(SERVICES), observed(db=read_back("db"), web=read_back("web")), ReconcileOptions()
    )
    assert not plan.has_changes
    assert str(plan) == (
        "network demo_default  nothing  (exists)\n"
        "service db-1          nothing  (up to date)\n"
        "service web-1         nothing  (up to date)\n"
    )


def test_a_difference_is_planned_down_to_the_field() -> None:
    web = read_back("web", environment={"MODE": "two"}, init=True)
    plan = reconcile(project(SERVICES), observed(db=read_back("db"), web=web), ReconcileOptions())
    assert str(plan) == (
        "network demo_default  nothing   (exists)\n"
        "service db-1          nothing   (up to date)\n"
        'service web-1         recreate  environment.MODE: "two" -> "one"\n'
        "                                init: true -> false\n"
    )


def test_what_compose_cannot_record_is_not_compared() -> None:
    wanted = read_back("web")
    found = replace(
        wanted, name="demo_web_1", stop_grace_period_s=3.0, labels={lbl.COMPOSE_SERVICE: "web"}, post_start=()
    )
    assert comparable(found) == comparable(wanted)
    reordered = replace(wanted, cap_add=("B", "A"), extra_hosts=("b:2", "a:1"))
    assert comparable(reordered) == comparable(
        replace(wanted, cap_add=("A", "B"), extra_hosts=("a:1", "b:2"))
    )


def test_stackup_containers_are_still_compared_by_their_labels() -> None:
    """A container with stackup's config label never takes the read-back path (its spec is None)."""
    info = ContainerInfo(
        id="x",
        name="demo-db-1",
        image="busybox:1",
        image_id=IMAGE_ID,
        state=ContainerState.RUNNING,
        labels={lbl.PROJECT: "demo", lbl.SERVICE: "db", lbl.CONTAINER_NUMBER: "1", lbl.CONFIG_HASH: "0" * 64},
    )
    seen = Observed.build("demo", [info], (), (), [ImageInfo(IMAGE_ID, ("busybox:1",))])
    plan = reconcile(project({"db": SERVICES["db"]}), seen, ReconcileOptions())
    assert plan.has_changes and "command: changed" in str(plan)  # from the labels' digests


def test_teardown_removes_an_adopted_stack() -> None:
    plan = plan_down(observed(db=read_back("db"), web=read_back("web")))
    assert sorted(op.name for op in plan) == ["db-1", "demo_default", "web-1"]
