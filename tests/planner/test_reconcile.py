"""Golden `str(plan)` tests: a real Project and an observed state (made by running the fake) in."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from stackup.planner.options import ReconcileOptions, Recreate
from stackup.planner.plan import OpKind
from stackup.planner.reconcile import reconcile
from stackup.spec.errors import DependencyCycle
from tests.planner._build import fake_with_images, observed, plan_for, project, up

ENV_PATH = "/stack/app.env"


def stack(db_url: str = "a", web_image: str = "nginx:1", **web: Any) -> dict[str, dict[str, Any]]:
    return {
        "db": {"image": "postgres:16", "healthcheck": {"test": ["CMD", "pg_isready"]}},
        "api": {
            "image": "api:1",
            "depends_on": {"db": {"condition": "service_healthy", "restart": True}},
        },
        "web": {
            "image": web_image,
            "environment": {"DB_URL": db_url},
            "depends_on": {"api": {"condition": "service_started", "restart": True}},
            **web,
        },
    }


def test_first_up_creates_everything_in_dependency_order() -> None:
    fake = fake_with_images("postgres:16", "api:1")
    assert str(plan_for(project(stack()), fake)) == (
        "network demo_default  create  (not found)\n"
        "image   nginx:1       pull    (not found)\n"
        "service db-1          create  (not found)\n"
        "service api-1         create  (not found)\n"
        "service web-1         create  (not found)\n"
    )


def test_second_up_is_a_no_op() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    up(project(stack()), fake)
    plan = plan_for(project(stack()), fake)
    assert not plan.has_changes
    assert str(plan) == (
        "network demo_default  nothing  (exists)\n"
        "service db-1          nothing  (up to date)\n"
        "service api-1         nothing  (up to date)\n"
        "service web-1         nothing  (up to date)\n"
    )


def test_one_environment_change_recreates_one_service_and_names_the_field() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    up(project(stack()), fake)
    plan = plan_for(project(stack(db_url="b")), fake)
    assert str(plan) == (
        "network demo_default  nothing   (exists)\n"
        "service db-1          nothing   (up to date)\n"
        "service api-1         nothing   (up to date)\n"
        'service web-1         recreate  environment.DB_URL: "a" -> "b"\n'
    )


def test_env_file_content_change_recreates_even_though_the_model_is_equal() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    env_file = {"env_file": [{"path": ENV_PATH}]}
    up(project(stack(**env_file)), fake, ReconcileOptions(referenced_files={ENV_PATH: b"X=1\n"}))
    assert fake.by_name("demo-web-1").labels  # created with the env file's hash
    plan = plan_for(project(stack(**env_file)), fake, ReconcileOptions(referenced_files={ENV_PATH: b"X=2\n"}))
    assert (
        str(plan).splitlines()[-1] == f"service web-1         recreate  env_file {ENV_PATH}: content changed"
    )
    same = plan_for(project(stack(**env_file)), fake, ReconcileOptions(referenced_files={ENV_PATH: b"X=1\n"}))
    assert not same.has_changes


def test_image_reference_change_pulls_and_recreates() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    up(project(stack()), fake)
    assert str(plan_for(project(stack(web_image="nginx:2")), fake)) == (
        "network demo_default  nothing   (exists)\n"
        "image   nginx:2       pull      (not found)\n"
        "service db-1          nothing   (up to date)\n"
        "service api-1         nothing   (up to date)\n"
        'service web-1         recreate  image: "nginx:1" -> "nginx:2"\n'
        "                                image: will be pulled\n"
    )


def test_new_image_id_under_the_same_reference_recreates() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    up(project(stack()), fake)
    fake.add_image("nginx:1", "sha256:" + "b" * 64)
    lines = str(plan_for(project(stack()), fake)).splitlines()
    assert (
        lines[-1]
        == 'service web-1         recreate  image id: "sha256:nginx1000000" -> "sha256:bbbbbbbbbbbb"'
    )


def test_new_image_id_is_seen_when_the_container_shows_its_image_as_an_id() -> None:
    """Docker reports `Image: sha256:...` for a container whose tag moved on to a rebuilt image."""
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    up(project(stack()), fake)
    web = fake.by_name("demo-web-1")
    with fake._lock:
        entry = next(c for c in fake.containers.values() if c.info.id == web.id)
        entry.info = replace(entry.info, image=web.image_id or "")  # as Docker shows it
    fake.add_image("nginx:1", "sha256:" + "b" * 64)
    lines = str(plan_for(project(stack()), fake)).splitlines()
    assert lines[-1] == (
        'service web-1         recreate  image id: "sha256:nginx1000000" -> "sha256:bbbbbbbbbbbb"'
    )


def test_orphan_is_warned_about_then_removed_on_request() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1", "redis:7")
    up(project({**stack(), "cache": {"image": "redis:7"}}), fake)
    plan = plan_for(project(stack()), fake)
    assert not plan.has_changes
    assert str(plan).splitlines()[-1] == (
        "warning: orphan container demo-cache-1"
        " (service cache is not in the project; --remove-orphans removes it)"
    )
    removing = plan_for(project(stack()), fake, ReconcileOptions(remove_orphans=True))
    assert "service cache-1       remove   (orphan)" in str(removing).splitlines()


def test_profile_disabled_service_is_not_an_orphan() -> None:
    """Compose #8432: a service switched off by a profile keeps its containers, untouched."""
    fake = fake_with_images("postgres:16", "api:1", "nginx:1", "redis:7")
    up(project({**stack(), "cache": {"image": "redis:7", "profiles": ["debug"]}}), fake)
    options = ReconcileOptions(remove_orphans=True, disabled_services=frozenset({"cache"}))
    plan = plan_for(project(stack()), fake, options)
    assert str(plan) == (
        "network demo_default  nothing  (exists)\n"
        "service db-1          nothing  (up to date)\n"
        "service api-1         nothing  (up to date)\n"
        "service web-1         nothing  (up to date)\n"
    )


def test_recreated_dependency_restarts_dependents_that_asked_for_it_transitively() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1", "postgres:17")
    up(project(stack()), fake)
    changed = stack()
    changed["db"] = {**changed["db"], "image": "postgres:17"}
    assert str(plan_for(project(changed), fake)) == (
        "network demo_default  nothing   (exists)\n"
        'service db-1          recreate  image: "postgres:16" -> "postgres:17"\n'
        "service api-1         restart   (dependency db recreated)\n"
        "service web-1         restart   (dependency api recreated)\n"
    )


def test_a_service_in_a_recreated_dependency_namespace_is_recreated_not_restarted() -> None:
    """`network_mode: service:x`: the namespace went with x's old container, so a restart of the
    dependent would join nothing; it is recreated (Docker refuses the restart outright)."""
    fake = fake_with_images("postgres:16", "postgres:17", "nginx:1")
    services = {"db": {"image": "postgres:16"}, "sidecar": {"image": "nginx:1", "network_mode": "service:db"}}
    up(project(services), fake)
    changed = {**services, "db": {"image": "postgres:17"}}
    assert str(plan_for(project(changed), fake)) == (
        "network demo_default  nothing   (exists)\n"
        'service db-1          recreate  image: "postgres:16" -> "postgres:17"\n'
        "service sidecar-1     recreate  (joins the namespace of db, which is recreated)\n"
    )


def test_scale_up_and_down() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    up(project(stack()), fake, ReconcileOptions(scale={"web": 3}))
    plan = plan_for(project(stack()), fake, ReconcileOptions(scale={"web": 1}))
    lines = str(plan).splitlines()
    assert lines[-2:] == [
        "service web-2         remove   (scaled to 1)",
        "service web-3         remove   (scaled to 1)",
    ]


def test_force_no_recreate_and_selection() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    up(project(stack()), fake)
    forced = plan_for(project(stack()), fake, ReconcileOptions(services=("api",), recreate=Recreate.FORCE))
    assert [(op.name, op.kind) for op in forced if op.changes_state] == [
        ("api-1", OpKind.RECREATE),
        ("web-1", OpKind.RESTART),
    ]
    assert "db-1" in {op.name for op in forced}  # dependency pulled in, left alone
    kept = plan_for(project(stack(db_url="b")), fake, ReconcileOptions(recreate=Recreate.NEVER))
    assert not kept.has_changes
    assert "changes kept: --no-recreate" in str(kept)
    alone = plan_for(project(stack()), fake, ReconcileOptions(services=("web",), no_deps=True))
    assert [op.name for op in alone] == ["demo_default", "web-1"]
    deps = ReconcileOptions(services=("web",), recreate_deps=Recreate.FORCE)
    assert {op.name for op in plan_for(project(stack()), fake, deps) if op.kind is OpKind.RECREATE} == {
        "db-1",
        "api-1",
    }


def test_cycle_is_an_error_that_names_it() -> None:
    cyclic = project(
        {
            "a": {"image": "x", "depends_on": {"b": {"condition": "service_started"}}},
            "b": {"image": "x", "depends_on": {"c": {"condition": "service_started"}}},
            "c": {"image": "x", "depends_on": {"a": {"condition": "service_started"}}},
        }
    )
    with pytest.raises(DependencyCycle) as err:
        reconcile(cyclic, observed(fake_with_images()))
    assert err.value.cycle == ("a", "b", "c", "a")
    assert str(err.value) == "services.a.depends_on.b: dependency cycle: a -> b -> c -> a"


def test_plan_json_lists_prerequisites() -> None:
    fake = fake_with_images("postgres:16", "api:1", "nginx:1")
    data = plan_for(project(stack()), fake).to_json()
    web = next(op for op in data["operations"] if op["id"] == "service:web-1")
    assert web["after"] == ["network:demo_default", "service:api-1"]
    assert data["has_changes"] is True
