"""Every error of a stack file in one report, each at the key and `file:line:col` written.

Regression tests for problems that used to be lost: reference checks skipped once the schema
failed (`restart: sometimes` hid the undefined network), model checks hidden behind field errors,
normalisation problems ending the load before the reference checks, and indices shifted by port
ranges or dropped entries pointing at the wrong line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.spec import LoadOptions, load
from stackup.spec.errors import SpecError


def problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "compose.yaml").write_text(text)
    with pytest.raises(SpecError) as err:
        load(LoadOptions(working_dir=tmp_path, environ={}))
    return str(err.value).splitlines()


def test_a_schema_error_keeps_the_reference_checks(tmp_path: Path) -> None:
    assert problems(tmp_path, """\
services:
  web:
    image: busybox
    restart: sometimes
    networks: [nope]
""") == [
        'compose.yaml:4:5: services.web.restart: invalid restart policy "sometimes": '
        "use no, always, on-failure[:N] or unless-stopped",
        "compose.yaml:5:16: services.web.networks.nope: undefined network 'nope'",
    ]


def test_cut_items_keep_their_indices_and_hidden_model_checks_surface(tmp_path: Path) -> None:
    assert problems(tmp_path, """\
services:
  web:
    image: busybox
    volumes:
      - type: bogus
        target: /a
      - data:/x
    ports:
      - target: notaport
      - "81:80"
    secrets: [s1]
    scale: 2
    deploy: {replicas: 3}
  api:
    image: busybox
    ports: ["81:80"]
""") == [
        "compose.yaml:2:3: services.web: scale (2) and deploy.replicas (3) disagree; set only one",
        "compose.yaml:5:9: services.web.volumes[0].type: expected one of 'bind', 'volume', 'tmpfs', "
        "'npipe', 'cluster' or 'image', got \"bogus\"",
        "compose.yaml:7:9: services.web.volumes[1]: undefined volume 'data'",
        'compose.yaml:9:9: services.web.ports[0].target: expected an integer, got "notaport"',
        "compose.yaml:10:9: services.web.ports[1]: 2 replicas cannot share 1 host port(s) 81; "
        "publish a range or drop the host port",
        "compose.yaml:11:15: services.web.secrets[0]: undefined secret 's1'",
        "compose.yaml:16:13: services.api.ports[0]: host port 81/tcp is already published by service "
        "'web' (compose.yaml:10:9)",
    ]


def test_normalisation_problems_keep_the_reference_checks(tmp_path: Path) -> None:
    """Port ranges expand into several entries and a bad entry is dropped: neither shifts where
    a later problem points; a service or section that is itself broken is not called undefined."""
    assert problems(tmp_path, """\
services:
  web:
    image: busybox
    ports: ["8000-8001:80-81", "9000:80"]
  api:
    image: busybox
    ports: ["7000-7001:80-81", "bad:port:x:y", "9000:80"]
    depends_on: [gone, broken]
    networks: [n1]
    environment:
      A: ${NOPE:?must be set}
  broken: [1, 2]
networks: [n1]
""") == [
        'compose.yaml:7:32: services.api.ports[1]: invalid port "bad:port:x:y": '
        'invalid IP address "bad:port"',
        "compose.yaml:7:48: services.api.ports[2]: host port 9000/tcp is already published by service "
        "'web' (compose.yaml:4:32)",
        "compose.yaml:8:18: services.api.depends_on.gone: undefined service 'gone'",
        "compose.yaml:11:7: services.api.environment.A: required variable NOPE is missing a value: "
        "must be set",
        "compose.yaml:12:3: services.broken: expected a service mapping, got a list",
        "compose.yaml:13:1: networks: expected a mapping, got a list",
    ]


def test_a_valid_stack_with_port_ranges_still_loads(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        'services:\n  web:\n    image: busybox\n    ports: ["8000-8001:80-81", "9000:80"]\n')
    loaded = load(LoadOptions(working_dir=tmp_path, environ={}))
    assert [p.published for p in loaded.project.services["web"].ports] == ["8000", "8001", "9000"]


def test_every_bad_line_of_a_dotenv_file(tmp_path: Path) -> None:
    """A bad key or a failed substitution ends its own line only; an unterminated quote ends
    the file."""
    (tmp_path / ".env").write_text('A B=1\nC=${D:?need D}\nOK=1\nE="${F:?need F}"\nG="open\nH=2\n')
    assert problems(tmp_path, "services: {}\n") == [
        f'{tmp_path}/.env:1:1: key "A B" cannot contain a space',
        f"{tmp_path}/.env:2:3: required variable D is missing a value: need D",
        f"{tmp_path}/.env:4:3: required variable F is missing a value: need F",
        f'{tmp_path}/.env:5:3: unterminated quoted value "open',
    ]


def test_every_document_of_a_file(tmp_path: Path) -> None:
    text = "services:\n  a: {image: x, image: y}\n---\nservices:\n  b: {image: x, image: y}\n"
    assert problems(tmp_path, text) == [
        'compose.yaml:2:17: services.a.image: duplicate key: "image" is already defined at line 2',
        'compose.yaml:5:17: services.b.image: duplicate key: "image" is already defined at line 5',
    ]
