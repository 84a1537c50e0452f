"""DockerRuntime's `Runtime` methods, one by one, against the real daemon.

Each test checks what the daemon recorded (`docker inspect`'s JSON through the same client), not
what the runtime returned to itself, so a field that the translation drops fails here.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from stackup.errors import EngineUnavailable, NotFound, RuntimeFailure
from stackup.runtime import labels as lbl
from stackup.runtime.base import (
    BuildSpec,
    ContainerSpec,
    ContainerState,
    ExecSpec,
    Health,
    HealthcheckSpec,
    HookSpec,
    Limits,
    Mount,
    MountType,
    NetworkAttachment,
    NetworkSpec,
    PortBinding,
    VolumeSpec,
)
from stackup.runtime.docker.runtime import DockerRuntime
from tests.runtime.docker._docker import IMAGE, PODMAN, runtime_env

pytestmark = pytest.mark.docker

SLEEP = ("sleep", "600")


def spec(project: str, service: str = "web", number: int = 1, **fields: Any) -> ContainerSpec:
    labels = {lbl.PROJECT: project, lbl.SERVICE: service, lbl.CONTAINER_NUMBER: str(number)}
    fields.setdefault("command", SLEEP)
    fields.setdefault("init", True)  # sleep as PID 1 ignores SIGTERM: stop would wait 10s
    return ContainerSpec(name=f"{project}-{service}-{number}", image=IMAGE, labels=labels, **fields)


def raw(rt: DockerRuntime, cid: str) -> dict[str, Any]:
    data: dict[str, Any] = rt.api.inspect_container(cid)
    return data


def network(rt: DockerRuntime, project: str, key: str = "default", **fields: Any) -> str:
    name = f"{project}_{key}"
    rt.create_network(NetworkSpec(name=name, labels={lbl.PROJECT: project, lbl.NETWORK: key}, **fields))
    return name


def test_container_lifecycle_and_labels(docker_rt: DockerRuntime, project_name: str) -> None:
    info = docker_rt.create_container(spec(project_name))
    assert info.state is ContainerState.CREATED
    labels = raw(docker_rt, info.id)["Config"]["Labels"]
    assert labels[lbl.COMPOSE_PROJECT] == project_name
    assert labels[lbl.COMPOSE_SERVICE] == "web"
    assert labels[lbl.COMPOSE_CONTAINER_NUMBER] == "1"
    assert labels[lbl.COMPOSE_ONEOFF] == "False"
    assert labels[lbl.PROJECT] == project_name

    docker_rt.start_container(info.id)
    [listed] = docker_rt.list_containers(project_name)
    assert (listed.id, listed.name, listed.state) == (
        info.id,
        f"{project_name}-web-1",
        ContainerState.RUNNING,
    )
    assert listed.image_id and listed.image_id.startswith("sha256:")
    inspected = docker_rt.inspect_container(info.id)
    assert inspected.state is ContainerState.RUNNING and inspected.started_at is not None

    docker_rt.stop_container(info.id, timeout_s=5)
    stopped = docker_rt.inspect_container(info.id)
    assert stopped.state is ContainerState.EXITED and stopped.exit_code is not None
    [listed] = docker_rt.list_containers(project_name)
    assert listed.state is ContainerState.EXITED and listed.exit_code == stopped.exit_code
    docker_rt.stop_container(info.id)  # stopping a stopped container is a no-op
    docker_rt.remove_container(info.id)
    assert docker_rt.list_containers(project_name) == []
    with pytest.raises(NotFound, match=r"(?i)no such container"):
        docker_rt.inspect_container(info.id)


def test_every_spec_field_reaches_the_daemon(
    docker_rt: DockerRuntime, project_name: str, tmp_path: Path
) -> None:
    net = network(docker_rt, project_name)
    docker_rt.create_volume(VolumeSpec(name=f"{project_name}_data", labels={lbl.PROJECT: project_name}))
    (tmp_path / "conf").mkdir()
    info = docker_rt.create_container(
        spec(
            project_name,
            command=("sh", "-c", "sleep 600"),
            entrypoint=("/bin/env",),
            environment={"A": "1", "B": "two words"},
            working_dir="/tmp",
            user="1000:1000",
            hostname="webhost",
            mounts=(
                Mount(MountType.BIND, "/conf", str(tmp_path / "conf"), read_only=True),
                Mount(MountType.BIND, "/created", str(tmp_path / "missing-dir")),
                Mount(MountType.VOLUME, "/data", f"{project_name}_data"),
                Mount(MountType.VOLUME, "/anon"),
                Mount(MountType.TMPFS, "/scratch"),
            ),
            ports=(PortBinding(80, 18080 + hash(project_name) % 1000, "127.0.0.1"), PortBinding(81)),
            networks=(NetworkAttachment(net, ("web", "www")),),
            limits=Limits(memory_bytes=64 * 1024 * 1024, cpus=0.5, pids=50),
            restart="on-failure:3",
            tty=True,
            stdin_open=True,
            read_only=True,
            cap_add=("NET_ADMIN",),
            cap_drop=("MKNOD",),
            stop_signal="SIGUSR1",
            stop_grace_period_s=2.5,
            extra_hosts=(("db.local", "10.1.2.3"),),
            dns=("10.0.0.53",),
            sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
        )
    )
    data = raw(docker_rt, info.id)
    config, host = data["Config"], data["HostConfig"]
    assert config["Cmd"] == ["sh", "-c", "sleep 600"] and config["Entrypoint"] == ["/bin/env"]
    assert {"A=1", "B=two words"} <= set(config["Env"])
    assert (config["WorkingDir"], config["User"], config["Hostname"]) == ("/tmp", "1000:1000", "webhost")
    assert config["Tty"] is True and config["OpenStdin"] is True
    assert config["StopSignal"] in ("SIGUSR1", "10") and config["StopTimeout"] == 3  # Podman: the number
    assert "Healthcheck" not in config  # unset stays unset: the image's check would be inherited
    mounted = {m["Destination"]: m for m in data["Mounts"]}  # what the daemon resolved
    assert (mounted["/conf"]["Type"], mounted["/conf"]["Source"], mounted["/conf"]["RW"]) == (
        "bind",
        str(tmp_path / "conf"),
        False,
    )
    assert (mounted["/created"]["Type"], mounted["/created"]["RW"]) == ("bind", True)
    assert (mounted["/data"]["Type"], mounted["/data"]["Name"]) == ("volume", f"{project_name}_data")
    assert mounted["/anon"]["Type"] == "volume" and mounted["/anon"]["Name"] != f"{project_name}_data"
    if not PODMAN:  # Podman lists tmpfs mounts only in HostConfig.Tmpfs
        assert {m["Target"]: m["Type"] for m in host["Mounts"]}["/scratch"] == "tmpfs"
    bindings = host["PortBindings"]
    assert bindings["80/tcp"][0]["HostIp"] == "127.0.0.1"
    [ephemeral] = bindings["81/tcp"]
    assert ephemeral["HostIp"] == ""
    assert ephemeral["HostPort"] == "" or (PODMAN and ephemeral["HostPort"].isdigit())  # Podman picks early
    assert host["NetworkMode"] == net or (PODMAN and host["NetworkMode"] == "bridge")  # Podman says "bridge"
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (64 * 1024 * 1024, 500_000_000, 50)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Init"] is True and host["ReadonlyRootfs"] is True
    assert host["CapAdd"] == ["NET_ADMIN"] and "MKNOD" in host["CapDrop"]  # Podman adds its default drops
    assert host["ExtraHosts"] == ["db.local:10.1.2.3"] and host["Dns"] == ["10.0.0.53"]
    aliases = data["NetworkSettings"]["Networks"][net]["Aliases"]
    assert {"web", "www"} <= set(aliases)

    docker_rt.start_container(info.id)  # the daemon accepts the whole of it
    running = docker_rt.inspect_container(info.id)
    published = {(p.container_port, p.host_ip) for p in running.ports}
    assert {(81, "0.0.0.0"), (81, "")} & published  # the ephemeral port got a host port (Podman: no IP)
    assert all(p.host_port > 0 for p in running.ports)
    assert (tmp_path / "missing-dir").is_dir()  # a bind's missing host directory is created
    sysctl = docker_rt.exec(info.id, ExecSpec(("cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")))
    assert sysctl.stdout == b"0\n"


def test_healthcheck_durations_disable_and_inherit(docker_rt: DockerRuntime, project_name: str) -> None:
    check = HealthcheckSpec(
        test=("CMD-SHELL", "true"), interval_s=0.5, timeout_s=2, retries=2, start_period_s=1
    )
    made = docker_rt.create_container(spec(project_name, "a", healthcheck=check))
    assert raw(docker_rt, made.id)["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 500_000_000,
        "Timeout": 2_000_000_000,
        "StartPeriod": 1_000_000_000,
        "Retries": 2,
    }
    off = docker_rt.create_container(spec(project_name, "b", healthcheck=HealthcheckSpec(test=("NONE",))))
    assert raw(docker_rt, off.id)["Config"]["Healthcheck"]["Test"] == ["NONE"]
    partial = docker_rt.create_container(spec(project_name, "c", healthcheck=HealthcheckSpec(interval_s=1)))
    inherited = raw(docker_rt, partial.id)["Config"].get("Healthcheck")
    if PODMAN:  # Podman keeps no check without a test: durations cannot be laid over the image's
        assert inherited is None
    else:
        assert "Test" not in inherited  # the image's test stays


@pytest.mark.docker_only("Podman runs health checks from systemd timers, which this machine lacks")
def test_health_status_and_last_probe(docker_rt: DockerRuntime, project_name: str) -> None:
    check = HealthcheckSpec(test=("CMD-SHELL", "true"), interval_s=0.5, retries=2)
    made = docker_rt.create_container(spec(project_name, "a", healthcheck=check))
    docker_rt.start_container(made.id)
    bad = docker_rt.create_container(
        spec(
            project_name,
            "d",
            healthcheck=HealthcheckSpec(("CMD-SHELL", "echo probe-said-no; exit 1"), 0.2, retries=1),
        )
    )
    docker_rt.start_container(bad.id)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        good, failing = docker_rt.inspect_container(made.id), docker_rt.inspect_container(bad.id)
        if good.health is Health.HEALTHY and failing.health is Health.UNHEALTHY:
            break
        time.sleep(0.2)
    assert (good.health, failing.health) == (Health.HEALTHY, Health.UNHEALTHY)
    assert failing.last_probe == "probe-said-no"
    listed = {c.name: c.health for c in docker_rt.list_containers(project_name)}
    assert (
        listed[f"{project_name}-a-1"] is Health.HEALTHY and listed[f"{project_name}-d-1"] is Health.UNHEALTHY
    )


def test_networks_aliases_fixed_address_and_second_network(
    docker_rt: DockerRuntime, project_name: str
) -> None:
    front = network(docker_rt, project_name, "front", subnets=("10.231.7.0/24",))
    back = network(docker_rt, project_name, "back", internal=True)
    listed = {n.name: n for n in docker_rt.list_networks()}
    assert listed[front].labels[lbl.COMPOSE_NETWORK] == "front"
    assert listed[front].labels[lbl.COMPOSE_PROJECT] == project_name
    assert docker_rt.api.inspect_network(back)["Internal"] is True

    db = docker_rt.create_container(
        spec(
            project_name,
            "db",
            networks=(
                NetworkAttachment(front, ("db", "database"), ipv4_address="10.231.7.50"),
                NetworkAttachment(back, ("db",)),
            ),
        )
    )
    docker_rt.start_container(db.id)
    info = docker_rt.inspect_container(db.id)
    assert info.addresses[front] == "10.231.7.50" and back in info.addresses
    client = docker_rt.create_container(
        spec(project_name, "client", networks=(NetworkAttachment(back, ("client",)),))
    )
    docker_rt.start_container(client.id)
    out = docker_rt.exec(client.id, ExecSpec(("nslookup", "db")))
    assert out.exit_code == 0, out
    assert info.addresses[back] in out.stdout.decode()
    replica = docker_rt.exec(client.id, ExecSpec(("nslookup", f"{project_name}-db-1")))
    assert replica.exit_code == 0  # Compose's `<project>-<service>-<n>` resolves too


def test_network_mode_service_joins_that_container(docker_rt: DockerRuntime, project_name: str) -> None:
    net = network(docker_rt, project_name)
    app = docker_rt.create_container(spec(project_name, "app", networks=(NetworkAttachment(net, ("app",)),)))
    docker_rt.start_container(app.id)
    side = docker_rt.create_container(spec(project_name, "side", network_mode="service:app"))
    assert raw(docker_rt, side.id)["HostConfig"]["NetworkMode"] == f"container:{app.id}"
    docker_rt.start_container(side.id)
    ip_app = docker_rt.exec(app.id, ExecSpec(("ip", "-4", "-o", "addr"))).stdout
    ip_side = docker_rt.exec(side.id, ExecSpec(("ip", "-4", "-o", "addr"))).stdout
    assert ip_app == ip_side
    with pytest.raises(NotFound, match="service ghost has no container"):
        docker_rt.create_container(spec(project_name, "lost", network_mode="service:ghost"))


def test_volumes(docker_rt: DockerRuntime, project_name: str) -> None:
    name = f"{project_name}_data"
    docker_rt.create_volume(VolumeSpec(name=name, labels={lbl.PROJECT: project_name, lbl.VOLUME: "data"}))
    [found] = [v for v in docker_rt.list_volumes() if v.name == name]
    assert found.labels[lbl.COMPOSE_VOLUME] == "data" and found.labels[lbl.COMPOSE_PROJECT] == project_name
    docker_rt.remove_volume(name)
    assert name not in {v.name for v in docker_rt.list_volumes()}
    with pytest.raises(NotFound):
        docker_rt.remove_volume(name)


def test_images_build_and_remove(docker_rt: DockerRuntime, project_name: str, tmp_path: Path) -> None:
    refs = {ref for image in docker_rt.list_images() for ref in image.refs}
    assert IMAGE in refs
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nARG WHO\nRUN echo built-by-$WHO > /built\n")
    tag = f"{project_name}-img:latest"
    try:
        built = docker_rt.build_image(BuildSpec(tag=tag, context=str(tmp_path), args={"WHO": "stackup"}))
        assert tag in built.refs
        cid = docker_rt.create_container(
            ContainerSpec(
                name=f"{project_name}-b",
                image=tag,
                command=("cat", "/built"),
                labels={lbl.PROJECT: project_name},
            )
        ).id
        docker_rt.start_container(cid)
        assert docker_rt.wait_container(cid) == 0
        assert [e.text for e in docker_rt.logs(cid)] == ["built-by-stackup"]
        docker_rt.remove_container(cid)
    finally:
        docker_rt.remove_image(tag)
    assert tag not in {r for i in docker_rt.list_images() for r in i.refs}
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN exit 7\n")
    with pytest.raises(RuntimeFailure, match=r"build .*(returned a non-zero code: 7|exit status 7)"):
        docker_rt.build_image(BuildSpec(tag=tag, context=str(tmp_path)))


def test_pull_failure_keeps_the_daemons_message(docker_rt: DockerRuntime) -> None:
    with pytest.raises(RuntimeFailure, match=r"pull 127\.0\.0\.1:9/nothing:1: .*(refused|connect)"):
        docker_rt.pull_image("127.0.0.1:9/nothing:1")


def test_daemon_errors_are_stackup_errors(docker_rt: DockerRuntime, project_name: str) -> None:
    docker_rt.create_container(spec(project_name))
    with pytest.raises(RuntimeFailure, match="is already in use"):
        docker_rt.create_container(spec(project_name))
    with pytest.raises(NotFound, match=r"(?i)no such image"):
        docker_rt.create_container(ContainerSpec(name=f"{project_name}-x", image="no/such:image"))
    with pytest.raises(NotFound):
        docker_rt.remove_network(f"{project_name}_absent")


def test_unreachable_daemon_names_the_endpoint(tmp_path: Path) -> None:
    sock = tmp_path / "nothing.sock"
    with pytest.raises(EngineUnavailable) as caught:
        DockerRuntime.from_env({"DOCKER_HOST": f"unix://{sock}"})
    message = str(caught.value)
    assert f"unix://{sock} (from DOCKER_HOST)" in message and "No such file or directory" in message
    assert "\n" not in message


def test_context_endpoint_is_used(tmp_path: Path) -> None:
    import hashlib
    import json

    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"remote").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": "remote", "Endpoints": {"docker": {"Host": "unix:///tmp/ctx.sock"}}})
    )
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    with pytest.raises(EngineUnavailable, match=r"unix:///tmp/ctx\.sock \(from docker context remote\)"):
        DockerRuntime.from_env({"DOCKER_CONFIG": str(tmp_path)})


def test_hooks_run_by_exec(docker_rt: DockerRuntime, project_name: str, tmp_path: Path) -> None:
    info = docker_rt.create_container(
        spec(
            project_name,
            mounts=(Mount(MountType.BIND, "/out", str(tmp_path)),),
            post_start=(HookSpec(("sh", "-c", "echo $WHO > /out/started"), environment={"WHO": "post"}),),
            pre_stop=(HookSpec(("sh", "-c", "pwd > /out/stopping"), working_dir="/tmp"),),
        )
    )
    docker_rt.start_container(info.id)
    assert (tmp_path / "started").read_text() == "post\n"
    fresh = DockerRuntime.from_env(runtime_env())  # another process: hooks come from the label
    try:
        fresh.stop_container(info.id, timeout_s=5)
    finally:
        fresh.close()
    assert (tmp_path / "stopping").read_text() == "/tmp\n"
    failing = docker_rt.create_container(
        spec(project_name, "f", post_start=(HookSpec(("sh", "-c", "echo nope >&2; exit 4")),))
    )
    with pytest.raises(RuntimeFailure, match=r"post_start hook .* failed: exit code 4: nope"):
        docker_rt.start_container(failing.id)


def test_copy_both_ways(docker_rt: DockerRuntime, project_name: str) -> None:
    info = docker_rt.create_container(spec(project_name))
    docker_rt.start_container(info.id)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"hello from the host\n"
        member = tarfile.TarInfo("greeting.txt")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    buf.seek(0)
    docker_rt.copy_to(info.id, "/tmp", buf)
    assert docker_rt.exec(info.id, ExecSpec(("cat", "/tmp/greeting.txt"))).stdout == b"hello from the host\n"
    back = b"".join(docker_rt.copy_from(info.id, "/tmp/greeting.txt"))
    with tarfile.open(fileobj=io.BytesIO(back)) as tar:
        names = tar.getnames()
        extracted = tar.extractfile("greeting.txt")
        assert extracted is not None and extracted.read() == b"hello from the host\n"
    assert names == ["greeting.txt"]
    with pytest.raises(NotFound):
        list(docker_rt.copy_from(info.id, "/no/such/file"))
