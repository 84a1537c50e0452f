"""Short syntax -> compose-go's long form, and every malformed value reported at its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from stackup.spec.errors import ProblemCollector, format_path
from stackup.spec.normalize import NormalizeContext, normalize_project

CTX = NormalizeContext(
    project_dir=Path("/proj"), project_name="demo", environment={"HOME": "/home/me", "FOO": "from-env"}
)


def load(text: str) -> dict[str, Any]:
    tree = YAML(typ="safe", pure=True).load(text)
    assert isinstance(tree, dict)
    return tree


def as_service(key_yaml: str) -> str:
    return "services:\n  web:\n" + "".join(f"    {line}\n" for line in key_yaml.splitlines())


def normalize(text: str) -> tuple[dict[str, Any], list[str]]:
    collector = ProblemCollector()
    out = normalize_project(load(text), CTX, collector)
    return out, [f"{format_path(p.path)}: {p.message}" for p in collector.problems]


def service(key_yaml: str) -> dict[str, Any]:
    out, problems = normalize(as_service(key_yaml))
    assert problems == []
    web = out["services"]["web"]
    assert isinstance(web, dict)
    return web


PORT = {"mode": "ingress", "protocol": "tcp"}

CASES: list[tuple[str, str, Any]] = [
    ("port int", "ports: [80]", [{**PORT, "target": 80}]),
    ("port container only", 'ports: ["80"]', [{**PORT, "target": 80}]),
    ("port host:container", 'ports: ["8080:80"]', [{**PORT, "target": 80, "published": "8080"}]),
    (
        "port ip",
        'ports: ["127.0.0.1:8080:80"]',
        [{**PORT, "host_ip": "127.0.0.1", "target": 80, "published": "8080"}],
    ),
    ("port ipv6", 'ports: ["[::1]:80:80"]', [{**PORT, "host_ip": "::1", "target": 80, "published": "80"}]),
    (
        "port udp",
        'ports: ["8080:80/udp"]',
        [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "udp"}],
    ),
    (
        "port range",
        'ports: ["8000-8002:8000-8002"]',
        [{**PORT, "target": t, "published": str(t)} for t in (8000, 8001, 8002)],
    ),
    ("port host range", 'ports: ["9000-9010:90"]', [{**PORT, "target": 90, "published": "9000-9010"}]),
    (
        "port long form defaults",
        "ports: [{target: '80', published: 8080}]",
        [{**PORT, "target": 80, "published": "8080"}],
    ),
    ("expose", 'expose: [3000, "4000"]', ["3000", "4000"]),
    (
        "volume bind relative",
        'volumes: ["./data:/data:ro"]',
        [{"type": "bind", "source": "/proj/data", "target": "/data", "read_only": True,
          "bind": {"create_host_path": True}}],
    ),
    (
        "volume bind home",
        'volumes: ["~/cache:/cache/"]',
        [{"type": "bind", "source": "/home/me/cache", "target": "/cache",
          "bind": {"create_host_path": True}}],
    ),
    (
        "volume named nocopy",
        'volumes: ["db:/var/lib/db:nocopy"]',
        [{"type": "volume", "source": "db", "target": "/var/lib/db", "volume": {"nocopy": True}}],
    ),
    ("volume anonymous", 'volumes: ["/cache"]', [{"type": "volume", "target": "/cache", "volume": {}}]),
    (
        "volume selinux and propagation",
        'volumes: ["../src:/src:z,rshared"]',
        [{"type": "bind", "source": "/src", "target": "/src",
          "bind": {"selinux": "z", "propagation": "rshared", "create_host_path": True}}],
    ),
    (
        "volume long bind",
        "volumes: [{type: bind, source: ./x, target: /x, bind: {propagation: slave}}]",
        [{"type": "bind", "source": "/proj/x", "target": "/x",
          "bind": {"propagation": "slave", "create_host_path": True}}],
    ),
    (
        "volume long tmpfs size",
        "volumes: [{type: tmpfs, target: /t, tmpfs: {size: 64m}}]",
        [{"type": "tmpfs", "target": "/t", "tmpfs": {"size": 64 * 1024**2}}],
    ),
    (
        "environment list",
        "environment: [A=1, B=, FOO, MISSING, C=x=y]",
        {"A": "1", "B": "", "FOO": "from-env", "MISSING": None, "C": "x=y"},
    ),
    (
        "environment map scalars",
        "environment: {A: 1, B: true, C: null, FOO: null, D: 1.5}",
        {"A": "1", "B": "true", "C": None, "FOO": "from-env", "D": "1.5"},
    ),
    ("env_file string", "env_file: .env", [{"path": "/proj/.env", "required": True}]),
    (
        "env_file list",
        "env_file: [a.env, {path: /b.env, required: false, format: raw}]",
        [{"path": "/proj/a.env", "required": True}, {"path": "/b.env", "required": False, "format": "raw"}],
    ),
    (
        "depends_on list",
        "depends_on: [db]",
        {"db": {"condition": "service_started", "required": True, "restart": False}},
    ),
    (
        "depends_on map",
        "depends_on: {db: {condition: service_healthy, restart: true}}",
        {"db": {"condition": "service_healthy", "required": True, "restart": True}},
    ),
    ("command string", "command: echo 'hello world' $HOME", ["echo", "hello world", "$HOME"]),
    ("command list", "command: [a, b]", ["a", "b"]),
    ("command empty", 'command: ""', []),
    ("entrypoint", "entrypoint: /bin/sh -c", ["/bin/sh", "-c"]),
    ("build string", "build: ./app", {"context": "/proj/app", "dockerfile": "Dockerfile"}),
    (
        "build map",
        "build: {context: ., args: [A=1, FOO, NOPE], labels: [x=y]}",
        {"context": "/proj", "dockerfile": "Dockerfile", "args": {"A": "1", "FOO": "from-env"},
         "labels": {"x": "y"}},
    ),
    (
        "build url",
        "build: https://github.com/x/y.git",
        {"context": "https://github.com/x/y.git", "dockerfile": "Dockerfile"},
    ),
    ("labels list", "labels: [a=b, c]", {"a": "b", "c": ""}),
    ("sysctls list", "sysctls: [net.core.somaxconn=1024]", {"net.core.somaxconn": "1024"}),
    ("extra_hosts list", 'extra_hosts: ["db:10.0.0.2", "v6=[::1]"]', {"db": ["10.0.0.2"], "v6": ["::1"]}),
    ("networks list", "networks: [front, back]", {"front": None, "back": None}),
    ("ulimits", "ulimits: {nofile: 1024, nproc: {soft: 1, hard: 2}}",
     {"nofile": {"soft": 1024, "hard": 1024}, "nproc": {"soft": 1, "hard": 2}}),
    ("mem_limit", "mem_limit: 512m", 512 * 1024**2),
    ("shm_size", "shm_size: 1gb", 1024**3),
    ("stop_grace_period", "stop_grace_period: 90s", "1m30s"),
    ("secrets short", "secrets: [token]", [{"source": "token", "target": "/run/secrets/token"}]),
    ("configs short", "configs: [cfg]", [{"source": "cfg"}]),
    ("dns string", "dns: 8.8.8.8", ["8.8.8.8"]),
    (
        "devices",
        'devices: ["/dev/fuse"]',
        [{"source": "/dev/fuse", "target": "/dev/fuse", "permissions": "rwm"}],
    ),
    ("gpus all", "gpus: all", [{"count": -1}]),
    ("pull_policy alias", "pull_policy: if_not_present", "missing"),
]


@pytest.mark.parametrize(("key_yaml", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_short_to_long(key_yaml: str, expected: Any) -> None:
    key = key_yaml.split(":", 1)[0]
    assert service(key_yaml)[key] == expected


def test_healthcheck() -> None:
    web = service("healthcheck: {test: curl -f localhost, interval: 30s, start_period: 1m}")
    assert web["healthcheck"] == {"test": ["CMD-SHELL", "curl -f localhost"], "interval": "30s",
                                  "start_period": "1m0s"}


def test_deploy_units() -> None:
    web = service("deploy: {replicas: 2, resources: {limits: {memory: 1g}}, restart_policy: {delay: 5s}}")
    assert web["deploy"]["resources"]["limits"]["memory"] == 1024**3
    assert web["deploy"]["restart_policy"]["delay"] == "5s"


def test_implicit_dependencies_are_folded_in() -> None:
    web = service("links: [db:database]\nvolumes_from: [data, 'container:x']\nipc: 'service:shm'")
    assert web["depends_on"] == {
        "db": {"condition": "service_started", "required": True, "restart": True},
        "data": {"condition": "service_started", "required": True, "restart": False},
        "shm": {"condition": "service_started", "required": True, "restart": True},
    }


def test_default_network_and_resource_names() -> None:
    out, problems = normalize(
        """
services:
  a: {image: x}
  b: {image: x, network_mode: host}
  c: {image: x, networks: [back]}
networks:
  back:
  outside: {external: true}
  legacy: {external: {name: real-name}}
volumes:
  data: {}
  given: {name: custom}
secrets:
  s: {file: ./s.txt}
"""
    )
    assert problems == []
    assert out["services"]["a"]["networks"] == {"default": None}
    assert "networks" not in out["services"]["b"]
    assert out["networks"] == {
        "back": {"name": "demo_back"},
        "outside": {"external": True, "name": "outside"},
        "legacy": {"external": True, "name": "real-name"},
        "default": {"name": "demo_default"},
    }
    assert out["volumes"] == {"data": {"name": "demo_data"}, "given": {"name": "custom"}}
    assert out["secrets"]["s"] == {"name": "demo_s", "file": "/proj/s.txt"}


def test_no_default_network_when_unused() -> None:
    out, _ = normalize("services:\n  a: {image: x, network_mode: none}\n")
    assert "networks" not in out


def test_input_tree_is_not_modified() -> None:
    tree = load("services:\n  web: {image: x, ports: ['80'], environment: [A=1]}\n")
    before = repr(tree)
    normalize_project(tree, CTX, ProblemCollector())
    assert repr(tree) == before


PROBLEMS: list[tuple[str, list[str]]] = [
    (
        'ports: ["80:80:80:80", "x:80", "70000", "80/icmp", "90-80"]',
        [
            'services.web.ports[0]: invalid port "80:80:80:80": invalid IP address "80:80"',
            'services.web.ports[1]: invalid port "x:80": invalid host port "x"',
            'services.web.ports[2]: invalid port "70000": invalid container port "70000"',
            'services.web.ports[3]: invalid port "80/icmp": unknown protocol "icmp" (use tcp, udp or sctp)',
            'services.web.ports[4]: invalid port "90-80": invalid container port range "90-80": '
            "end is before start",
        ],
    ),
    (
        'volumes: ["a:b:c:d", "./x:/x:bogus", "a::b"]',
        [
            'services.web.volumes[0]: invalid volume "a:b:c:d": too many colons',
            'services.web.volumes[1]: invalid volume "./x:/x:bogus": unknown option "bogus" '
            "(use ro, rw, nocopy, z, Z or a propagation mode)",
            'services.web.volumes[2]: invalid volume "a::b": empty section between colons',
        ],
    ),
    ("stop_grace_period: 10", ['services.web.stop_grace_period: missing unit in duration "10" '
                               "(for example 10s, 1m30s, 500ms)"]),
    ("mem_limit: lots", ['services.web.mem_limit: invalid size "lots"']),
    ("environment: 5",
     ["services.web.environment: expected a mapping or a list of KEY=VALUE strings, got 5"]),
    ('environment: ["A =1"]', ['services.web.environment: environment variable "A" is declared with a '
                               "trailing space"]),
    ("command: \"echo 'unterminated\"", ["services.web.command: cannot split command \"echo 'unterminated\": "
                                         "No closing quotation"]),
    ("ports: 80", ["services.web.ports: expected a list, got 80"]),
    ('extra_hosts: ["nohost"]', ['services.web.extra_hosts: invalid extra host "nohost": expected HOST=IP '
                                 "or HOST:IP"]),
    ("ulimits: {nofile: lots}",
     ['services.web.ulimits.nofile: expected a number or {soft, hard}, got "lots"']),
    ("healthcheck: {interval: 5}", ['services.web.healthcheck.interval: missing unit in duration "5" '
                                    "(for example 10s, 1m30s, 500ms)"]),
]


@pytest.mark.parametrize(("key_yaml", "expected"), PROBLEMS, ids=[p[0][:30] for p in PROBLEMS])
def test_problems_are_reported_at_their_path(key_yaml: str, expected: list[str]) -> None:
    _, problems = normalize(as_service(key_yaml))
    assert problems == expected


def test_all_problems_found_in_one_pass() -> None:
    out, problems = normalize(
        """
services:
  a: {image: x, ports: ["bad"], mem_limit: "1q"}
  b: {image: x, stop_grace_period: forever}
  c: [not, a, mapping]
networks: [wrong]
"""
    )
    assert [p.split(":")[0] for p in problems] == [
        "services.a.ports[0]",
        "services.a.mem_limit",
        "services.b.stop_grace_period",
        "services.c",
        "networks",
    ]
    assert "ports" in out["services"]["a"] and out["services"]["a"]["ports"] == []
    assert "mem_limit" not in out["services"]["a"]
    assert "c" not in out["services"]
