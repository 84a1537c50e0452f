"""The Docker runtime's pure parts, no daemon: wire translations both ways, endpoint choice,
Compose labels, hook labels and the read-back of a container another tool made."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from stackup.runtime import labels as lbl
from stackup.runtime.base import (
    ContainerSpec,
    ContainerState,
    Health,
    HealthcheckSpec,
    HookSpec,
    Mount,
    MountType,
    NetworkAttachment,
)
from stackup.runtime.docker import translate
from stackup.runtime.docker.endpoint import resolve
from stackup.runtime.docker.hooks import hooks_label, hooks_of
from stackup.runtime.docker.labels import container_labels, network_labels
from stackup.runtime.docker.readback import read_back
from stackup.runtime.docker.runtime import _short_refs


def test_restart_policies() -> None:
    assert translate.restart_policy("no") == {"Name": ""}
    assert translate.restart_policy("always") == {"Name": "always"}
    assert translate.restart_policy("on-failure:5") == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert translate.restart_policy("unless-stopped") == {"Name": "unless-stopped"}


def test_healthcheck_unset_stays_unset() -> None:
    assert translate.healthcheck(None) is None
    assert translate.healthcheck(HealthcheckSpec(test=("NONE",))) == {"Test": ["NONE"]}
    only_interval = translate.healthcheck(HealthcheckSpec(interval_s=2))
    assert only_interval == {"Interval": 2_000_000_000, "Timeout": 0, "StartPeriod": 0, "Retries": 0}


def test_first_network_at_create_the_rest_connected() -> None:
    spec = ContainerSpec(
        name="p-web-1",
        image="i",
        labels={lbl.PROJECT: "p", lbl.SERVICE: "web", lbl.CONTAINER_NUMBER: "1"},
        networks=(
            NetworkAttachment("p_a", ("web",), ipv4_address="10.0.0.5"),
            NetworkAttachment("p_b", ("web",)),
        ),
        stop_grace_period_s=0.5,
    )
    body = translate.create_body(spec, spec.labels, None)
    assert body["HostConfig"]["NetworkMode"] == "p_a"
    assert body["NetworkingConfig"] == {
        "EndpointsConfig": {"p_a": {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.0.0.5"}}}
    }
    assert body["StopTimeout"] == 1  # rounded up, never 0
    assert [a.network for a in translate.extra_networks(spec, None)] == ["p_b"]
    named = ContainerSpec(name="db", image="i", labels=spec.labels, networks=spec.networks[:1])
    assert translate.aliases(named, named.networks[0]) == ["web", "p-web-1"]  # replica name added
    mode = translate.create_body(spec, {}, "container:abc")
    assert mode["HostConfig"]["NetworkMode"] == "container:abc" and "NetworkingConfig" not in mode
    assert translate.extra_networks(spec, "container:abc") == []


def test_list_entries_carry_state_health_and_exit_code() -> None:
    entry = {
        "Id": "c1",
        "Names": ["/p-web-1"],
        "Image": "i",
        "ImageID": "sha256:x",
        "Labels": {},
        "State": "exited",
        "Status": "Exited (3) 2 minutes ago",
        "Command": "sh -c 'echo hi'",
    }
    info = translate.from_list(entry)
    assert (info.name, info.state, info.exit_code, info.command) == (
        "p-web-1",
        ContainerState.EXITED,
        3,
        ("sh", "-c", "echo hi"),
    )
    up = translate.from_list({**entry, "State": "running", "Status": "Up 3 seconds (health: starting)"})
    assert (up.state, up.health, up.exit_code) == (ContainerState.RUNNING, Health.STARTING, None)
    assert translate.from_list({**entry, "State": "configured"}).state is ContainerState.CREATED  # Podman


def test_times() -> None:
    assert translate.parse_time("0001-01-01T00:00:00Z") is None
    assert translate.parse_time("2026-12-04T16:19:36.709806123Z") == datetime(
        2026, 12, 4, 16, 19, 36, 709806, tzinfo=UTC
    )


def test_endpoint_order(tmp_path: Path) -> None:
    assert resolve({"DOCKER_HOST": "tcp://h:2376"}).url == "tcp://h:2376"
    assert str(resolve({}, home=tmp_path)) == "unix:///var/run/docker.sock (from default)"
    meta = tmp_path / ".docker" / "contexts" / "meta" / hashlib.sha256(b"pod").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Endpoints": {"docker": {"Host": "unix:///run/podman.sock"}}})
    )
    assert resolve({"DOCKER_CONTEXT": "pod"}, home=tmp_path).url == "unix:///run/podman.sock"
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"currentContext": "pod"}))
    assert str(resolve({}, home=tmp_path)) == "unix:///run/podman.sock (from docker context pod)"
    assert resolve({"DOCKER_CONTEXT": "default"}, home=tmp_path).url == "unix:///var/run/docker.sock"


def test_compose_labels_next_to_stackups() -> None:
    ours = {
        lbl.PROJECT: "p",
        lbl.SERVICE: "web",
        lbl.CONTAINER_NUMBER: "2",
        lbl.DEPENDS_ON: "db:service_healthy:false",
    }
    out = container_labels(ours, "sha256:abc")
    assert out[lbl.COMPOSE_PROJECT] == "p" and out[lbl.COMPOSE_SERVICE] == "web"
    assert out[lbl.COMPOSE_CONTAINER_NUMBER] == "2" and out[lbl.COMPOSE_ONEOFF] == "False"
    assert (
        out[lbl.COMPOSE_DEPENDS_ON] == "db:service_healthy:false" and out[lbl.COMPOSE_IMAGE] == "sha256:abc"
    )
    assert container_labels({"user": "label"}) == {"user": "label"}  # not a stack container: nothing added
    assert network_labels({lbl.PROJECT: "p", lbl.NETWORK: "back"})[lbl.COMPOSE_NETWORK] == "back"


def test_hooks_round_trip_through_the_label() -> None:
    hook = HookSpec(("sh", "-c", "echo"), user="1", privileged=True, working_dir="/w", environment={"A": "1"})
    labels = hooks_label((hook,), ())
    assert hooks_of(labels).post_start == (hook,) and hooks_of(labels).pre_stop == ()
    assert hooks_label((), ()) == {} and hooks_of({}).post_start == ()


def test_podman_short_names() -> None:
    assert _short_refs(["localhost/app:1", "docker.io/library/nginx:1", "quay.io/x/y:2"]) == (
        "localhost/app:1",
        "app:1",
        "docker.io/library/nginx:1",
        "nginx:1",
        "quay.io/x/y:2",
    )


def test_read_back_subtracts_the_image_and_the_daemons_additions() -> None:
    image = {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"vendor": "x"}, "Volumes": {"/var/lib/x": {}}}
    data = {
        "Id": "abcdef1234567890",
        "Name": "/p_web_1",
        "Config": {
            "Image": "busybox:1",
            "Env": ["PATH=/bin", "A=1"],
            "Cmd": ["sh"],
            "Hostname": "abcdef123456",
            "Labels": {
                "vendor": "x",
                "team": "y",
                lbl.COMPOSE_PROJECT: "p",
                lbl.COMPOSE_SERVICE: "web",
                lbl.COMPOSE_CONTAINER_NUMBER: "1",
            },
            "Volumes": {"/var/lib/x": {}, "/anon": {}, "/data": {}},
        },
        "HostConfig": {
            "Binds": ["p_data:/data:rw", "/srv:/srv:ro"],
            "NetworkMode": "p_default",
            "Init": True,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]},
            "Tmpfs": {"/t": ""},
        },
        "NetworkSettings": {"Networks": {"p_default": {"Aliases": ["web", "abcdef123456", "p-web-1"]}}},
    }
    spec = read_back(data, image, {"abcdef1234567890": "web"})
    assert spec.environment == {"A": "1"} and spec.command is None and spec.hostname is None
    assert spec.labels == {"team": "y"}
    assert spec.mounts == (
        Mount(MountType.VOLUME, "/anon"),
        Mount(MountType.VOLUME, "/data", "p_data"),
        Mount(MountType.BIND, "/srv", "/srv", read_only=True),
        Mount(MountType.TMPFS, "/t"),
    )
    assert spec.networks == (NetworkAttachment("p_default", ("web",)),) and spec.network_mode is None
    assert (spec.restart, spec.init, spec.ports[0].host_port) == ("on-failure:2", True, None)
