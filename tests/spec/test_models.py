"""The typed model: located validation errors, canonical output, round trips, JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML

from stackup.spec.errors import Location, ProblemCollector, SourceMap, SpecError, format_path
from stackup.spec.models import (
    Config,
    DependsCondition,
    DependsOn,
    Network,
    Project,
    RestartKind,
    RestartPolicy,
    Secret,
    Service,
    Volume,
)
from stackup.spec.normalize import NormalizeContext, normalize_project
from stackup.spec.schema import project_json_schema
from stackup.spec.validate import canonical, validate_project

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "awesome-compose"
CTX = NormalizeContext(project_dir=Path("/proj"), project_name="demo", environment={"HOME": "/home/me"})


def load(text: str) -> dict[str, Any]:
    tree = YAML(typ="safe", pure=True).load(text)
    assert isinstance(tree, dict)
    return tree


def build(tree: dict[str, Any], ctx: NormalizeContext = CTX, source_map: SourceMap | None = None) -> Project:
    collector = ProblemCollector()
    normalized = normalize_project(tree, ctx, collector)
    assert [str(p) for p in collector.problems] == []
    return validate_project(normalized, source_map or SourceMap())


def problems(text: str) -> list[str]:
    """Validation problems as `path: message (hint)`; the file's own `name:` wins if present."""
    tree = load(text)
    ctx = NormalizeContext(project_dir=Path("/proj"), project_name="" if "name" in tree else "demo")
    normalized = normalize_project(tree, ctx, ProblemCollector())
    with pytest.raises(SpecError) as info:
        validate_project(normalized, SourceMap())
    return [_line(p.path, p.message, p.hint) for p in info.value.problems]


def _line(path: tuple[str | int, ...], message: str, hint: str | None) -> str:
    return f"{format_path(path)}: {message}" + (f" ({hint})" if hint else "")


INVALID: list[tuple[str, str, list[str]]] = [
    (
        "typo with hint",
        "services: {web: {image: x, enviroment: {A: 1}}}",
        ['services.web.enviroment: unknown key "enviroment" (did you mean `environment`?)'],
    ),
    (
        "typo in nested model",
        "services: {web: {image: x, healthcheck: {test: [CMD, x], intervall: 5s}}}",
        ['services.web.healthcheck.intervall: unknown key "intervall" (did you mean `interval`?)'],
    ),
    (
        "typo at top level",
        "servics: {}\nservices: {web: {image: x}}",
        ['servics: unknown key "servics" (did you mean `services`?)'],
    ),
    (
        "integer",
        "services: {web: {image: x, cpu_shares: abc}}",
        ['services.web.cpu_shares: expected an integer, got "abc"'],
    ),
    (
        "boolean",
        "services: {web: {image: x, privileged: maybe}}",
        ['services.web.privileged: expected true or false, got "maybe"'],
    ),
    (
        "string",
        "services: {web: {image: [x]}}",
        ["services.web.image: expected a string, got a list"],
    ),
    (
        "enum",
        "services: {web: {image: x, depends_on: {db: {condition: service_ready}}}, db: {image: y}}",
        ["services.web.depends_on.db.condition: expected one of 'service_started', 'service_healthy' or "
         "'service_completed_successfully', got \"service_ready\""],
    ),
    (
        "restart policy",
        "services: {web: {image: x, restart: sometimes}}",
        ['services.web.restart: invalid restart policy "sometimes": use no, always, on-failure[:N] '
         "or unless-stopped"],
    ),
    (
        "missing required key",
        "services: {web: {image: x, develop: {watch: [{path: ./src}]}}}",
        ['services.web.develop.watch[0]: missing required key "action"'],
    ),
    (
        "project name",
        "name: My_App\nservices: {}",
        ["name: invalid project name \"My_App\" (use lowercase letters, digits, '-' and '_', starting "
         "with a letter or digit)"],
    ),
    (
        "scale conflict",
        "services: {web: {image: x, scale: 2, deploy: {replicas: 3}}}",
        ["services.web: scale (2) and deploy.replicas (3) disagree; set only one"],
    ),
    (
        "several at once",
        "services: {a: {image: x, ports: [{target: 80, protocol: icmp}]}, b: {image: y, tty: nope}}",
        ["services.a.ports[0].protocol: expected one of 'tcp', 'udp' or 'sctp', got \"icmp\"",
         'services.b.tty: expected true or false, got "nope"'],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_validation_problems(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_problems_are_located_through_the_source_map() -> None:
    smap = SourceMap()
    smap.add(("services", "web"), Location("compose.yaml", 3, 3))
    smap.add(("services", "web", "cpu_shares"), Location("compose.yaml", 5, 5))
    with pytest.raises(SpecError) as info:
        build(load("services: {web: {image: x, cpu_shares: abc, tty: nope}}"), source_map=smap)
    located = {format_path(p.path): str(p.location) for p in info.value.problems}
    assert located == {"services.web.cpu_shares": "compose.yaml:5:5", "services.web.tty": "compose.yaml:3:3"}
    assert str(info.value).splitlines()[0].startswith("compose.yaml:3:3: services.web.tty:")


def test_model_types_and_helpers() -> None:
    project = build(load("""
services:
  web:
    image: nginx
    restart: on-failure:5
    depends_on: {db: {condition: service_healthy}}
    deploy: {replicas: 3}
    healthcheck: {test: [CMD, "true"], interval: 1m30s}
    profiles: [debug]
  db: {image: postgres, scale: 2}
  one: {image: x}
"""))
    web = project.services["web"]
    assert web.restart == RestartPolicy(kind=RestartKind.ON_FAILURE, max_retries=5)
    assert web.depends_on["db"] == DependsOn(condition=DependsCondition.HEALTHY, required=True, restart=False)
    assert web.replicas == 3
    assert project.services["db"].replicas == 2
    assert project.services["one"].replicas == 1
    assert web.profiles == ["debug"]
    assert web.healthcheck is not None and web.healthcheck.interval is not None
    assert web.healthcheck.interval.seconds == 90.0
    with pytest.raises(ValidationError):
        web.image = "changed"  # type: ignore[misc]


def test_every_compose_key_is_modelled() -> None:
    schema = json.loads((FIXTURES.parent / "model" / "compose-spec.json").read_text())
    defs = schema["definitions"]
    assert len(defs["service"]["properties"]) == 92
    pairs = [
        (defs["service"], Service), (defs["network"], Network), (defs["volume"], Volume),
        (defs["secret"], Secret), (defs["config"], Config), (schema, Project),
    ]
    for definition, model in pairs:
        assert set(definition["properties"]) <= set(model.model_fields), model.__name__


def test_extensions_round_trip_everywhere() -> None:
    project = build(load("""
x-common: &c {a: 1}
services:
  web:
    image: x
    x-svc: {b: 2}
    ports: [{target: 80, x-port: true}]
networks:
  n: {x-net: 3}
"""))
    assert project.extensions == {"x-common": {"a": 1}}
    assert project.services["web"].extensions == {"x-svc": {"b": 2}}
    out = canonical(project)
    assert out["x-common"] == {"a": 1}
    assert out["services"]["web"]["x-svc"] == {"b": 2}
    assert out["services"]["web"]["ports"][0]["x-port"] is True
    assert out["networks"]["n"]["x-net"] == 3
    assert "extensions" not in out["services"]["web"]


def test_extensions_key_is_not_a_back_door() -> None:  # the model's own field name is not a Compose key
    assert problems("services: {web: {image: x, extensions: {foo: 1}}}") == [
        'services.web: unknown key "extensions"'
    ]


def test_canonical_omits_empty_and_prints_compose_types() -> None:
    project = build(load("""
services:
  web:
    image: x
    environment: [UNSET]
    stop_grace_period: 90s
    mem_limit: 1g
    ports: ["8080:80"]
    restart: always
    tty: false
    configs: [{source: c, mode: 0o440}]
configs:
  c: {content: hi}
"""))
    web = canonical(project)["services"]["web"]
    assert web == {
        "configs": [{"source": "c", "mode": "0440"}],
        "environment": {"UNSET": None},
        "image": "x",
        "mem_limit": "1073741824",
        "networks": {"default": None},
        "ports": [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}],
        "restart": "always",
        "stop_grace_period": "1m30s",
    }


def _corpus() -> list[Path]:
    return sorted([*FIXTURES.glob("*/compose.yaml"), *FIXTURES.glob("*/compose.yml")])


def test_corpus_is_present() -> None:
    assert len(_corpus()) >= 29
    assert (FIXTURES / "LICENSE").exists()


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.parent.name)
def test_awesome_compose_round_trips(path: Path) -> None:
    ctx = NormalizeContext(project_dir=path.parent, project_name=path.parent.name, environment={})
    project = build(load(path.read_text()), ctx)
    printed = canonical(project)
    again = build(printed, ctx)
    assert again == project
    assert canonical(again) == printed


def test_json_schema_is_usable() -> None:
    schema = project_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert "services" in schema["properties"]
    assert "name" not in schema.get("required", [])
    service = schema["$defs"]["Service"]
    assert "extensions" not in service["properties"]
    assert service["patternProperties"] == {"^x-": {}}
    assert service["additionalProperties"] is False
    assert service["properties"]["stop_grace_period"]["anyOf"][0]["pattern"].startswith("^")


def test_rich_project_round_trips() -> None:
    """Every short syntax at once: canonical output normalises and validates to the same Project."""
    project = build(load("""
services:
  web:
    build: {context: ./app, args: [A=1]}
    command: npm run dev
    ports: ["8000-8001:8000-8001", "127.0.0.1:9000-9010:90/udp", 3000]
    volumes: ["./src:/src:ro", "cache:/cache", "/anon", {type: tmpfs, target: /t, tmpfs: {size: 1m}}]
    environment: [A=1, B]
    env_file: [.env]
    extra_hosts: ["db:10.0.0.2"]
    healthcheck: {test: curl -f localhost, interval: 90s, start_period: 500ms}
    restart: on-failure:2
    ulimits: {nofile: 1024}
    mem_limit: 1.5g
    secrets: [s]
    configs: [{source: c, mode: 0o400}]
    depends_on: [db]
    links: [db]
    deploy: {resources: {limits: {cpus: "0.5", memory: 256m}}}
    develop: {watch: [{path: ./src, action: sync, target: /src, ignore: node_modules}]}
  db: {image: postgres, networks: [back]}
networks: {back: {}}
volumes: {cache: {}}
secrets: {s: {file: ./s.txt}}
configs: {c: {content: hi}}
"""))
    printed = canonical(project)
    assert build(printed) == project
    assert canonical(build(printed)) == printed
