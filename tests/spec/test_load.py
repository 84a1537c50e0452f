"""The whole loader: discovery, environment, project name, and every problem in one report."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.errors import StackupError
from stackup.spec import LoadedProject, LoadOptions, load
from stackup.spec.errors import DependencyCycle, SpecError
from stackup.spec.options import normalize_project_name
from stackup.spec.validate import canonical


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run(root: Path, environ: dict[str, str] | None = None, **kw: object) -> LoadedProject:
    return load(LoadOptions(working_dir=root, environ=environ or {}, **kw))  # type: ignore[arg-type]


def errors(root: Path, **kw: object) -> str:
    with pytest.raises(SpecError) as err:
        run(root, **kw)  # type: ignore[arg-type]
    return str(err.value)


SIMPLE = "services:\n  web:\n    image: nginx:${TAG:-1}\n"


@pytest.mark.parametrize(("names", "used"), [
    (["compose.yaml"], ["compose.yaml"]),
    (["compose.yml"], ["compose.yml"]),
    (["docker-compose.yaml"], ["docker-compose.yaml"]),
    (["docker-compose.yml"], ["docker-compose.yml"]),
    (["stackup.yaml"], ["stackup.yaml"]),
    (["compose.yaml", "compose.override.yaml"], ["compose.yaml", "compose.override.yaml"]),
    (["docker-compose.yml", "docker-compose.override.yml"],
     ["docker-compose.yml", "docker-compose.override.yml"]),
    (["compose.yaml", "docker-compose.override.yml"], ["compose.yaml"]),
])
def test_discovery(tmp_path: Path, names: list[str], used: list[str]) -> None:
    write(tmp_path, dict.fromkeys(names, SIMPLE))
    assert run(tmp_path).files == [tmp_path / n for n in used]


def test_discovery_walks_up_and_warns_on_several(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": SIMPLE, "docker-compose.yml": SIMPLE, "sub/deeper/.keep": ""})
    loaded = run(tmp_path / "sub" / "deeper")
    assert loaded.files == [tmp_path / "compose.yaml"]
    assert loaded.project.name == normalize_project_name(tmp_path.name)
    assert "found several stack files" in loaded.warnings[0]


def test_no_file_found(tmp_path: Path) -> None:
    assert "no stack file found in" in errors(tmp_path)


@pytest.mark.parametrize(("env", "expected"), [
    ({"COMPOSE_FILE": "a.yaml:b.yaml"}, ["a.yaml", "b.yaml"]),
    ({"COMPOSE_FILE": "a.yaml", "STACKUP_FILE": "b.yaml"}, ["b.yaml"]),
    ({"COMPOSE_FILE": "a.yaml;b.yaml", "COMPOSE_PATH_SEPARATOR": ";"}, ["a.yaml", "b.yaml"]),
])
def test_compose_file_variable(tmp_path: Path, env: dict[str, str], expected: list[str]) -> None:
    write(tmp_path, {"a.yaml": SIMPLE, "b.yaml": SIMPLE})
    assert run(tmp_path, env).files == [tmp_path / n for n in expected]


def test_compose_file_from_dotenv(tmp_path: Path) -> None:
    write(tmp_path, {"b.yaml": SIMPLE, ".env": "COMPOSE_FILE=b.yaml\n"})
    assert run(tmp_path).files == [tmp_path / "b.yaml"]


@pytest.mark.parametrize(("kw", "env", "yaml_name", "expected"), [
    ({"project_name": "cli"}, {"COMPOSE_PROJECT_NAME": "env"}, "file", "cli"),
    ({}, {"COMPOSE_PROJECT_NAME": "env"}, "file", "env"),
    ({}, {"COMPOSE_PROJECT_NAME": "env", "STACKUP_PROJECT_NAME": "ours"}, "file", "ours"),
    ({}, {}, "My_File.Name", "my_filename"),
    ({}, {"N": "x1"}, "${N}-app", "x1-app"),
    ({}, {}, None, "mydir_1"),
])
def test_project_name_precedence(tmp_path: Path, kw: dict[str, object], env: dict[str, str],
                                 yaml_name: str | None, expected: str) -> None:
    root = tmp_path / "-My Dir_1"
    head = f"name: {yaml_name}\n" if yaml_name else ""
    write(root, {"compose.yaml": head + SIMPLE})
    assert run(root, env, **kw).project.name == expected


@pytest.mark.parametrize(("kw", "env", "source"), [
    ({"project_name": "Bad Name"}, {}, "-p/--project-name"),
    ({}, {"COMPOSE_PROJECT_NAME": "_x"}, "COMPOSE_PROJECT_NAME"),
])
def test_invalid_explicit_project_name(tmp_path: Path, kw: dict[str, object], env: dict[str, str],
                                       source: str) -> None:
    write(tmp_path, {"compose.yaml": SIMPLE})
    text = errors(tmp_path, environ=env, **kw)
    assert f"(from {source}): must consist only of lowercase letters" in text


def test_project_name_available_to_interpolation(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "name: p1\nservices:\n  w:\n    image: x\n"
                                     "    hostname: ${COMPOSE_PROJECT_NAME}-w\n"})
    assert run(tmp_path).project.services["w"].hostname == "p1-w"


def test_environment_precedence(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  w:\n    image: ${IMG}:${TAG}\n    hostname: ${H}\n",
                     ".env": "IMG=dotenv\nTAG=dotenv\nH=dotenv\n", "a.env": "TAG=a\nH=a\n", "b.env": "H=b\n"})
    assert run(tmp_path, {"IMG": "os"}).project.services["w"].image == "os:dotenv"
    loaded = run(tmp_path, {"IMG": "os"}, env_files=[Path("a.env"), Path("b.env")])
    assert loaded.project.services["w"].image == "os:a"
    assert loaded.project.services["w"].hostname == "b"
    loaded = run(tmp_path, {"COMPOSE_ENV_FILES": "b.env"})
    assert loaded.project.services["w"].hostname == "b"
    assert 'the "IMG" variable is not set; defaulting to a blank string' in loaded.warnings


def test_override_file_and_source_map(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  web:\n    image: a\n    ports: ['80:80']\n",
                     "compose.override.yaml": "services:\n  web:\n    image: b\n"})
    loaded = run(tmp_path)
    assert canonical(loaded.project)["services"]["web"]["image"] == "b"
    assert str(loaded.source_map.locate(("services", "web", "image"))) == "compose.override.yaml:3:5"
    assert str(loaded.source_map.locate(("services", "web", "ports", 0))) == "compose.yaml:4:13"


def test_referenced_files_are_read(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  w:\n    image: x\n    env_file: [w.env]\n"
                                     "    secrets: [s]\nsecrets:\n  s:\n    file: ./s.txt\n",
                     "w.env": "A=1\n", "s.txt": "hush"})
    loaded = run(tmp_path)
    assert loaded.referenced_files == {str(tmp_path / "w.env"): b"A=1\n", str(tmp_path / "s.txt"): b"hush"}


def test_missing_env_file_is_located(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  w:\n    image: x\n    env_file:\n      - nope.env\n"})
    assert errors(tmp_path) == (
        f"compose.yaml:5:9: services.w.env_file[0]: file {tmp_path}/nope.env not found")


MISTAKES = """\
services:
  web:
    image: nginx
    enviroment:
      A: 1
    ports:
      - "80:80:80:80"
      - "8080:80"
    depends_on: [dbb]
  api:
    image: ${IMG?IMG must be set}
    ports: ["8080:81"]
    networks: [front]
    volumes: [cache:/c]
  db:
    image: postgres
    depends_on: [worker]
  worker:
    image: w
    depends_on: [db]
"""


def test_every_mistake_in_one_report(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": MISTAKES})
    assert errors(tmp_path).splitlines() == [
        "compose.yaml:4:5: services.web.enviroment: unknown key \"enviroment\" (did you mean `environment`?)",
        'compose.yaml:7:9: services.web.ports[0]: invalid port "80:80:80:80": invalid IP address "80:80"',
        "compose.yaml:9:18: services.web.depends_on.dbb: undefined service 'dbb' (did you mean `db`?)",
        "compose.yaml:11:5: services.api.image: required variable IMG is missing a value: IMG must be set",
        "compose.yaml:12:13: services.api.ports[0]: host port 8080/tcp is already published by service "
        "'web' (compose.yaml:8:9)",
        "compose.yaml:13:16: services.api.networks.front: undefined network 'front'",
        "compose.yaml:14:15: services.api.volumes[0]: undefined volume 'cache'",
        "compose.yaml:17:18: services.db.depends_on.worker: dependency cycle: db -> worker -> db "
        "(db -> worker at compose.yaml:17:18; worker -> db at compose.yaml:20:18) "
        "(remove one of these dependencies)",
    ]
    (tmp_path / "compose.yaml").write_text(
        MISTAKES.replace("enviroment", "environment").replace('"80:80:80:80"', '"81:80"')
        .replace("${IMG?IMG must be set}", "api"))
    with pytest.raises(DependencyCycle) as err:
        run(tmp_path)
    assert err.value.cycle == ("db", "worker")
    assert str(err.value).splitlines() == [
        "compose.yaml:9:18: services.web.depends_on.dbb: undefined service 'dbb' (did you mean `db`?)",
        "compose.yaml:12:13: services.api.ports[0]: host port 8080/tcp is already published by service "
        "'web' (compose.yaml:8:9)",
        "compose.yaml:13:16: services.api.networks.front: undefined network 'front'",
        "compose.yaml:14:15: services.api.volumes[0]: undefined volume 'cache'",
        "compose.yaml:17:18: services.db.depends_on.worker: dependency cycle: db -> worker -> db "
        "(db -> worker at compose.yaml:17:18; worker -> db at compose.yaml:20:18) "
        "(remove one of these dependencies)",
    ]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "compose.yaml: empty file: a stack file needs at least a `services:` mapping"),
    (b"services: [\n", "compose.yaml:2:1: invalid YAML: expected the node content, but found '<stream end>'"),
    (b"- web\n", "compose.yaml:1:1: top level must be a mapping (services: ...), not a list"),
    (b"\x00\x01\x02", "compose.yaml: binary file, not a YAML stack file"),
    (b"name: caf\xe9\n", "compose.yaml:1:10: not UTF-8 text (byte 0xe9)"),
])
def test_file_errors_are_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "compose.yaml").write_bytes(content)
    text = errors(tmp_path)
    assert text.startswith(message)
    assert "\n" not in text and "Traceback" not in text


def test_missing_and_directory_files_named_with_f(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    text = errors(tmp_path, files=[Path("nope.yaml"), Path("dir.yaml")])
    assert text.splitlines() == ["dir.yaml: is a directory, not a stack file", "nope.yaml: no such file"]


def test_errors_are_stackup_errors(tmp_path: Path) -> None:
    with pytest.raises(StackupError):
        run(tmp_path)
