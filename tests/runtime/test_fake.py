"""FakeRuntime keeps real state and enforces an engine's rules."""

from __future__ import annotations

import pytest

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.base import ContainerSpec, ContainerState, Health, HealthcheckSpec
from stackup.runtime.fake import Behaviour, FakeRuntime


def make(fake: FakeRuntime, name: str = "c1", **kw: object) -> str:
    spec = ContainerSpec(name=name, image="img", labels={"io.stackup.service": "svc"}, **kw)  # type: ignore[arg-type]
    return fake.create_container(spec).id


def test_names_unique_image_required_running_not_removable() -> None:
    fake = FakeRuntime()
    with pytest.raises(NotFound):
        make(fake)
    fake.add_image("img", "sha256:1")
    cid = make(fake)
    with pytest.raises(RuntimeFailure):
        make(fake)
    fake.start_container(cid)
    with pytest.raises(RuntimeFailure):
        fake.remove_container(cid)
    fake.stop_container(cid)
    fake.remove_container(cid)
    assert not fake.containers


def test_scripted_health_and_exit() -> None:
    fake = FakeRuntime()
    fake.add_image("img", "sha256:1")
    fake.behave("svc", Behaviour(healthy_after=2))
    cid = make(fake, healthcheck=HealthcheckSpec(test=("CMD", "true")))
    fake.start_container(cid)
    assert fake.inspect_container(cid).health is Health.STARTING
    assert fake.inspect_container(cid).health is Health.HEALTHY
    fake.behave("svc", Behaviour(exit_code=4, exit_after=1))
    other = make(fake, "c2")
    fake.start_container(other)
    info = fake.inspect_container(other)
    assert (info.state, info.exit_code) == (ContainerState.EXITED, 4)
