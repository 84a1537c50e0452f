"""include and extends: resources pulled in, paths rebased, conflicts and cycles located."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackup.spec import LoadedProject, LoadOptions, load
from stackup.spec.errors import SpecError
from stackup.spec.validate import canonical

FIXTURES = Path(__file__).parent.parent / "fixtures" / "load"


def copy(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    return root


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def run(root: Path) -> LoadedProject:
    return load(LoadOptions(working_dir=root, environ={}))


def errors(root: Path) -> list[str]:
    with pytest.raises(SpecError) as err:
        run(root)
    return str(err.value).splitlines()


def test_include_imports_resources_with_their_own_env_and_paths(tmp_path: Path) -> None:
    root = copy("include", tmp_path)
    loaded = run(root)
    services = canonical(loaded.project)["services"]
    assert services["db"]["image"] == "postgres:16"
    assert services["web"]["image"] == "web:", "an include's .env must not leak into the parent"
    assert services["db"]["env_file"] == [{"path": str(root / "db" / "db.env"), "required": True}]
    assert services["db"]["volumes"][0]["source"] == str(root / "db" / "init")
    assert "data" in loaded.project.volumes
    assert str(loaded.source_map.locate(("services", "db", "image"))) == "db/compose.yaml:3:5"


def test_include_long_form_with_list_and_project_directory(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "compose.yaml": "include:\n  - path: [lib/a.yaml, lib/b.yaml]\n    project_directory: lib\n"
                        "    env_file: vars.env\nservices: {}\n",
        "vars.env": "IMG=img\n",
        "lib/a.yaml": "services:\n  s:\n    image: ${IMG}\n    build: ./ctx\n",
        "lib/b.yaml": "services:\n  s:\n    image: override\n",
    })
    service = canonical(run(root).project)["services"]["s"]
    assert service["image"] == "override"
    assert service["build"]["context"] == str(root / "lib" / "ctx")


def test_include_conflict_names_both_files(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "compose.yaml": "include: [other.yaml]\nservices:\n  web:\n    image: a\n",
        "other.yaml": "services:\n  web:\n    image: b\n",
    })
    assert errors(root) == ["compose.yaml:3:3: services.web: service 'web' is defined in compose.yaml "
                            "and also in other.yaml (included); rename one or use extends"]


def test_identical_include_definitions_are_fine(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "compose.yaml": "include: [a.yaml, b.yaml]\nservices: {}\n",
        "a.yaml": "services: {a: {image: x, networks: [n]}}\nnetworks: {n: {}}\n",
        "b.yaml": "services: {b: {image: x, networks: [n]}}\nnetworks: {n: {}}\n",
    })
    assert sorted(run(root).project.services) == ["a", "b"]


def test_include_cycle(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "compose.yaml": "include: [a.yaml]\nservices: {}\n",
        "a.yaml": "include: [compose.yaml]\nservices: {}\n",
    })
    (line,) = errors(root)
    assert line.startswith("a.yaml:1:11: include[0]: include cycle: ")
    assert line.endswith("compose.yaml -> " + str(root / "a.yaml") + " -> " + str(root / "compose.yaml"))


@pytest.mark.parametrize(("entry", "message"), [
    ("- {file: x.yaml}",
     "include[0]: unknown include option 'file' (expected path, env_file, project_directory)"),
    ("- {env_file: x.env}", "include[0]: include needs `path`: a file or a list of files"),
    ("- missing.yaml", "compose.yaml:2:5: include[0]: file missing.yaml not found"),
])
def test_include_entry_errors(tmp_path: Path, entry: str, message: str) -> None:
    root = write(tmp_path, {"compose.yaml": f"include:\n  {entry}\nservices: {{}}\n"})
    assert errors(root)[0].endswith(message)


def test_extends_other_file_chain_and_rebase(tmp_path: Path) -> None:
    root = copy("extends", tmp_path)
    services = canonical(run(root).project)["services"]
    web, worker = services["web"], services["worker"]
    base = root / "base"
    assert web["image"] == "app:1"
    assert web["build"]["context"] == str(base)
    assert web["env_file"] == [{"path": str(base / "core.env"), "required": True}]
    assert web["environment"] == {"LEVEL": "app", "ROLE": "web"}
    assert [v.get("source") for v in web["volumes"]] == [str(base / "src"), "data"]
    assert worker["command"] == ["work"]
    assert worker["environment"] == web["environment"]
    assert "extends" not in web


def test_extends_source_map_points_into_the_base_file(tmp_path: Path) -> None:
    loaded = run(copy("extends", tmp_path))
    assert str(loaded.source_map.locate(("services", "web", "image"))) == "base/common.yaml:3:5"
    assert str(loaded.source_map.locate(("services", "web", "environment", "ROLE"))) == "compose.yaml:7:7"


@pytest.mark.parametrize(("services", "message"), [
    ("  a: {extends: b, image: x}\n  b: {extends: c}\n  c: {extends: a}\n",
     "compose.yaml:2:7: services.a.extends: extends cycle: a (compose.yaml) -> b (compose.yaml) -> "
     "c (compose.yaml) -> a (compose.yaml)"),
    ("  a: {extends: a, image: x}\n",
     "compose.yaml:2:7: services.a.extends: extends cycle: a (compose.yaml) -> a (compose.yaml)"),
    ("  a: {extends: bsae, image: x}\n  base: {image: y}\n",
     "compose.yaml:2:7: services.a.extends: extends unknown service 'bsae' (did you mean `base`?)"),
    ("  a: {extends: {file: other.yaml, service: nope}, image: x}\n",
     "compose.yaml:2:7: services.a.extends: extends unknown service 'nope' in other.yaml"),
    ("  a: {extends: {file: gone.yaml, service: x}, image: x}\n",
     "compose.yaml:2:17: services.a.extends.file: file gone.yaml not found"),
])
def test_extends_errors(tmp_path: Path, services: str, message: str) -> None:
    root = write(tmp_path, {"compose.yaml": "services:\n" + services,
                            "other.yaml": "services:\n  real: {image: r}\n"})
    assert message in errors(root)


def test_extends_then_override_file(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "compose.yaml": "services:\n  base: {image: x, ports: ['80:80']}\n  web: {extends: base}\n",
        "compose.override.yaml": "services:\n  web: {ports: !reset []}\n",
    })
    project = run(root).project
    assert project.services["web"].ports == []
    assert len(project.services["base"].ports) == 1
