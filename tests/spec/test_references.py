"""Cross references on the validated model: YAML in, every located problem out."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.spec import LoadOptions, load
from stackup.spec.errors import DependencyCycle, SpecError


def problems(tmp_path: Path, services: str, extra: str = "") -> list[str]:
    (tmp_path / "compose.yaml").write_text("services:\n" + services + extra)
    with pytest.raises(SpecError) as err:
        load(LoadOptions(working_dir=tmp_path, environ={}))
    return str(err.value).splitlines()


CASES = [
    pytest.param("  a:\n    image: x\n    depends_on: [b]\n",
                 "", ["compose.yaml:4:18: services.a.depends_on.b: undefined service 'b'"], id="depends-on"),
    pytest.param("  a:\n    image: x\n    links: ['webb:alias']\n  web: {image: y}\n",
                 "", ["compose.yaml:4:13: services.a.links[0]: undefined service 'webb' "
                      "(did you mean `web`?)"],
                 id="links"),
    pytest.param("  a:\n    image: x\n    network_mode: service:b\n",
                 "", ["compose.yaml:4:5: services.a.network_mode: undefined service 'b'"], id="network-mode"),
    pytest.param("  a:\n    image: x\n    volumes_from: ['b:ro', 'container:c']\n",
                 "", ["compose.yaml:4:20: services.a.volumes_from[0]: undefined service 'b'"],
                 id="volumes-from"),
    pytest.param("  a:\n    image: x\n    networks: [frontend]\n", "networks:\n  front: {}\n",
                 ["compose.yaml:4:16: services.a.networks.frontend: undefined network 'frontend' "
                  "(did you mean `front`?)"], id="network"),
    pytest.param("  a:\n    image: x\n    volumes: ['data:/d', './here:/h', '/abs:/a', '/anon']\n", "",
                 ["compose.yaml:4:15: services.a.volumes[0]: undefined volume 'data'"], id="volume"),
    pytest.param("  a:\n    image: x\n    secrets: [s]\n    configs: [{source: c, target: /c}]\n", "",
                 ["compose.yaml:4:15: services.a.secrets[0]: undefined secret 's'",
                  "compose.yaml:5:15: services.a.configs[0]: undefined config 'c'"], id="secret-config"),
    pytest.param("  a:\n    image: x\n    ports: ['8080:80']\n  b:\n    image: y\n    ports: ['8080:81/udp', "
                 "'127.0.0.1:8080:82']\n", "",
                 ["compose.yaml:7:28: services.b.ports[1]: host port 8080/tcp is already published by "
                  "service 'a' (compose.yaml:4:13)"], id="port-clash-wildcard"),
    pytest.param("  a:\n    image: x\n    ports: ['127.0.0.1:8080:80']\n  b:\n    image: y\n"
                 "    ports: ['127.0.0.2:8080:80']\n  c:\n    image: z\n    ports: ['8000-8002:80']\n"
                 "    scale: 2\n",
                 "", [], id="distinct-ips-and-a-range-for-replicas"),
    pytest.param("  a:\n    image: x\n    scale: 2\n    ports: ['9000:80']\n", "",
                 ["compose.yaml:5:13: services.a.ports[0]: 2 replicas cannot share 1 host port(s) 9000; "
                  "publish a range or drop the host port"], id="replicas-fixed-port"),
    pytest.param("  a:\n    image: x\n    deploy: {replicas: 3}\n    ports: ['9000-9001:80']\n", "",
                 ["compose.yaml:5:13: services.a.ports[0]: 3 replicas cannot share 2 host port(s) 9000-9001; "
                  "publish a range or drop the host port"], id="replicas-short-range"),
]


@pytest.mark.parametrize(("services", "extra", "expected"), CASES)
def test_reference_problems(tmp_path: Path, services: str, extra: str, expected: list[str]) -> None:
    if not expected:
        (tmp_path / "compose.yaml").write_text("services:\n" + services + extra)
        load(LoadOptions(working_dir=tmp_path, environ={}))
        return
    assert problems(tmp_path, services, extra) == expected


CYCLE = """\
  c:
    image: x
    depends_on: [a]
  a:
    image: x
    depends_on:
      b: {condition: service_healthy}
  b:
    image: x
    depends_on: [c]
  solo:
    image: x
    depends_on: [solo]
"""


def test_cycles_are_deterministic_and_located(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n" + CYCLE)
    with pytest.raises(DependencyCycle) as err:
        load(LoadOptions(working_dir=tmp_path, environ={}))
    assert err.value.cycle == ("a", "b", "c")
    assert str(err.value).splitlines() == [
        "compose.yaml:8:7: services.a.depends_on.b: dependency cycle: a -> b -> c -> a (a -> b at "
        "compose.yaml:8:7; b -> c at compose.yaml:11:18; c -> a at compose.yaml:4:18) (remove one of "
        "these dependencies)",
        "compose.yaml:14:18: services.solo.depends_on.solo: dependency cycle: solo -> solo (solo -> solo at "
        "compose.yaml:14:18) (remove one of these dependencies)",
    ]
