"""Merge rules as (base yaml, override yaml, expected yaml) rows, like compose-go's assertMergeYaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from stackup.spec.errors import Location, SourceMap
from stackup.spec.merge import merge_documents, port_key, rule_for
from stackup.spec.yamlparse import parse_text


def _doc(text: str, name: str) -> tuple[dict[str, Any], SourceMap]:
    doc = parse_text(text, Path(name), name)[0]
    return doc.tree, doc.source_map


def assert_merge_yaml(base: str, override: str, expected: str) -> None:
    merged, _ = merge_documents(*_doc(base, "base.yaml"), *_doc(override, "override.yaml"))
    assert merged == YAML(typ="safe", pure=True).load(expected)


CASES = [
    pytest.param("services: {a: {image: x, tty: true}}", "services: {a: {image: y}}",
                 "services: {a: {image: y, tty: true}}", id="scalars-override-mappings-merge"),
    pytest.param("services: {a: {cap_add: [A]}}", "services: {a: {cap_add: [B, A]}}",
                 "services: {a: {cap_add: [A, B]}}", id="sequences-append-unique"),
    pytest.param("services: {a: {security_opt: [x]}}", "services: {a: {security_opt: [x]}}",
                 "services: {a: {security_opt: [x, x]}}", id="plain-sequences-append"),
    pytest.param("services: {a: {command: [a, b]}}", "services: {a: {command: [c]}}",
                 "services: {a: {command: [c]}}", id="command-replaced"),
    pytest.param("services: {a: {entrypoint: sh -c}}", "services: {a: {entrypoint: [bash]}}",
                 "services: {a: {entrypoint: [bash]}}", id="entrypoint-replaced"),
    pytest.param("services: {a: {healthcheck: {test: [CMD, a], retries: 3}}}",
                 "services: {a: {healthcheck: {test: [CMD, b]}}}",
                 "services: {a: {healthcheck: {test: [CMD, b], retries: 3}}}",
                 id="healthcheck-test-replaced"),
    pytest.param("services: {a: {environment: [A=1, B=2]}}", "services: {a: {environment: {B: 3, C: 4}}}",
                 "services: {a: {environment: {A: '1', B: 3, C: 4}}}", id="environment-list-and-map"),
    pytest.param("services: {a: {environment: {A: x}}}", "services: {a: {environment: [A]}}",
                 "services: {a: {environment: {A: null}}}", id="environment-bare-key-overrides"),
    pytest.param("services: {a: {labels: {x: '1'}}}", "services: {a: {labels: [y=2]}}",
                 "services: {a: {labels: {x: '1', y: '2'}}}", id="labels"),
    pytest.param("services: {a: {sysctls: [net.a=1]}}", "services: {a: {sysctls: {net.a: 2}}}",
                 "services: {a: {sysctls: {net.a: 2}}}", id="sysctls"),
    pytest.param("services: {a: {extra_hosts: ['h:1.1.1.1', 'h:2.2.2.2']}}",
                 "services: {a: {extra_hosts: {g: 3.3.3.3}}}",
                 "services: {a: {extra_hosts: {h: [1.1.1.1, 2.2.2.2], g: 3.3.3.3}}}", id="extra-hosts"),
    pytest.param("services: {a: {ports: ['8080:80', '9090:90']}}",
                 "services: {a: {ports: [{target: 80, published: '8080', protocol: tcp, x-n: 1}, "
                 "'7070:70']}}",
                 "services: {a: {ports: [{target: 80, published: '8080', protocol: tcp, x-n: 1}, '9090:90', "
                 "'7070:70']}}", id="ports-by-ip-target-published-protocol"),
    pytest.param("services: {a: {ports: ['8080:80']}}", "services: {a: {ports: ['8080:80/udp']}}",
                 "services: {a: {ports: ['8080:80', '8080:80/udp']}}", id="ports-protocol-distinct"),
    pytest.param("services: {a: {volumes: ['./a:/data', 'v:/v']}}",
                 "services: {a: {volumes: [{type: bind, source: ./b, target: /data}]}}",
                 "services: {a: {volumes: [{type: bind, source: ./b, target: /data}, 'v:/v']}}",
                 id="volumes-by-target"),
    pytest.param("services: {a: {secrets: [s, {source: t, target: /x}]}}",
                 "services: {a: {secrets: [{source: s2, target: /run/secrets/s}, {source: u, target: /x}]}}",
                 "services: {a: {secrets: [{source: s2, target: /run/secrets/s}, {source: u, target: /x}]}}",
                 id="secrets-by-target"),
    pytest.param("services: {a: {configs: [c]}}", "services: {a: {configs: [{source: d, target: /c}]}}",
                 "services: {a: {configs: [{source: d, target: /c}]}}", id="configs-by-target"),
    pytest.param("services: {a: {depends_on: [b]}}",
                 "services: {a: {depends_on: {c: {condition: service_healthy}}}}",
                 "services: {a: {depends_on: {b: {condition: service_started, required: true}, "
                 "c: {condition: service_healthy}}}}", id="depends-on"),
    pytest.param("services: {a: {depends_on: {b: {condition: service_healthy}}}}",
                 "services: {a: {depends_on: [b]}}",
                 "services: {a: {depends_on: {b: {condition: service_started, required: true}}}}",
                 id="depends-on-list-resets-condition"),
    pytest.param("services: {a: {networks: {front: {aliases: [x]}}}}",
                 "services: {a: {networks: [front, back]}}",
                 "services: {a: {networks: {front: {aliases: [x]}, back: null}}}", id="service-networks"),
    pytest.param("services: {a: {dns: 8.8.8.8}}", "services: {a: {dns: [1.1.1.1, 8.8.8.8]}}",
                 "services: {a: {dns: [8.8.8.8, 1.1.1.1]}}", id="dns-string-becomes-list"),
    pytest.param("services: {a: {env_file: [a.env]}}",
                 "services: {a: {env_file: [{path: a.env, required: false}]}}",
                 "services: {a: {env_file: [{path: a.env, required: false}]}}", id="env-file-by-path"),
    pytest.param("services: {a: {build: ./dir}}", "services: {a: {build: {dockerfile: X}}}",
                 "services: {a: {build: {context: ./dir, dockerfile: X}}}", id="build-string-and-map"),
    pytest.param("services: {a: {logging: {driver: json-file, options: {max-size: 1m}}}}",
                 "services: {a: {logging: {driver: syslog}}}",
                 "services: {a: {logging: {driver: syslog}}}", id="logging-other-driver-replaces"),
    pytest.param("services: {a: {logging: {driver: json-file, options: {max-size: 1m}}}}",
                 "services: {a: {logging: {options: {max-file: '2'}}}}",
                 "services: {a: {logging: {driver: json-file, options: {max-size: 1m, max-file: '2'}}}}",
                 id="logging-same-driver-merges"),
    pytest.param("services: {a: {ulimits: {nofile: {soft: 1, hard: 2}}}}",
                 "services: {a: {ulimits: {nofile: 5}}}",
                 "services: {a: {ulimits: {nofile: 5}}}", id="ulimit-replaced"),
    pytest.param("networks: {n: {ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.1}]}}}",
                 "networks: {n: {ipam: {config: [{subnet: 10.0.0.0/24, ip_range: 10.0.0.0/25}, "
                 "{subnet: 10.1.0.0/24}]}}}",
                 "networks: {n: {ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.1, "
                 "ip_range: 10.0.0.0/25}, {subnet: 10.1.0.0/24}]}}}", id="ipam-by-subnet"),
    pytest.param("services: {a: {image: x, ports: ['80:80']}}", "services: {a: {ports: !reset []}}",
                 "services: {a: {image: x}}", id="reset-removes"),
    pytest.param("services: {a: {image: x}, b: {image: y}}", "services: {b: !reset null}",
                 "services: {a: {image: x}}", id="reset-removes-service"),
    pytest.param("services: {a: {environment: {A: '1'}}}", "services: {a: {environment: {A: !reset null}}}",
                 "services: {a: {environment: {}}}", id="reset-inside-keyed-mapping"),
    pytest.param("services: {a: {ports: ['80:80'], environment: {A: '1'}}}",
                 "services: {a: {ports: !override ['90:90'], environment: !override {B: '2'}}}",
                 "services: {a: {ports: ['90:90'], environment: {B: '2'}}}", id="override-replaces"),
    pytest.param("services: {a: {image: x}}", "services: {a: {image: null}}",
                 "services: {a: {image: x}}", id="null-keeps-earlier"),
    pytest.param("x-a: {k: 1}", "x-a: {j: 2}", "x-a: {k: 1, j: 2}", id="extensions-merge"),
]


@pytest.mark.parametrize(("base", "override", "expected"), CASES)
def test_merge(base: str, override: str, expected: str) -> None:
    assert_merge_yaml(base, override, expected)


def test_first_file_tags_are_resolved() -> None:
    text = "services: {a: {ports: !reset [], cap_add: !override [X]}}"
    merged, _ = merge_documents({}, SourceMap(), *_doc(text, "a.yaml"))
    assert merged == {"services": {"a": {"cap_add": ["X"]}}}


def test_source_map_follows_the_deciding_file() -> None:
    base = "services:\n  a:\n    image: x\n    ports:\n      - '80:80'\n"
    over = "services:\n  a:\n    image: y\n    ports:\n      - '90:90'\n"
    _, smap = merge_documents(*_doc(base, "base.yaml"), *_doc(over, "over.yaml"))
    assert smap.locate(("services", "a", "image")) == Location("over.yaml", 3, 5)
    assert smap.locate(("services", "a", "ports", 0)) == Location("base.yaml", 5, 9)
    assert smap.locate(("services", "a", "ports", 1)) == Location("over.yaml", 5, 9)


def test_environment_list_item_location_moves_to_its_key() -> None:
    _, smap = merge_documents(*_doc("services: {a: {environment: {A: '1'}}}", "b.yaml"),
                              *_doc("services:\n  a:\n    environment:\n      - B=2\n", "o.yaml"))
    assert smap.locate(("services", "a", "environment", "B")) == Location("o.yaml", 4, 9)


def test_type_mismatch_is_reported() -> None:
    from stackup.spec.errors import ProblemCollector

    collector = ProblemCollector()
    merge_documents(*_doc("services: {a: {build: {context: .}, security_opt: [x]}}", "b.yaml"),
                    *_doc("services: {a: {security_opt: {x: 1}}}", "o.yaml"), collector=collector)
    assert [p.message for p in collector.problems] == [
        "cannot merge a mapping onto a list defined earlier; the later value replaces it"]


@pytest.mark.parametrize(("short", "long"), [
    ("8080:80", {"published": 8080, "target": 80}),
    ("127.0.0.1:8080:80/udp", {"host_ip": "127.0.0.1", "published": "8080", "target": 80, "protocol": "udp"}),
    ("[::1]:8080:80", {"host_ip": "::1", "published": 8080, "target": 80}),
    ("80", {"target": 80}),
])
def test_port_identity_is_the_same_in_short_and_long_form(short: str, long: dict[str, Any]) -> None:
    assert port_key(short) == port_key(long)


def test_rule_table_matches_one_key_per_star() -> None:
    assert rule_for(("services", "web", "ports")) is not None
    assert rule_for(("services", "web", "ports", "x")) is None
    assert rule_for(("networks", "n", "ipam", "config")) is not None
    assert rule_for(("services", "web", "image")) is None
