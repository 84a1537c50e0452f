"""Profiles: which services a run includes, and what happens to edges into disabled ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.spec import LoadOptions, load
from stackup.spec.errors import SpecError

STACK = """\
services:
  web:
    image: w
    depends_on:
      cache: {condition: service_started, required: false}
  cache:
    image: c
    profiles: [perf]
  debug:
    image: d
    profiles: [dev, tools]
  admin:
    image: a
    profiles: [tools]
"""


def run(tmp_path: Path, text: str = STACK, environ: dict[str, str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    (tmp_path / "compose.yaml").write_text(text)
    return load(LoadOptions(working_dir=tmp_path, environ=environ or {}, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "environ", "enabled"), [
    ({}, {}, ["web"]),
    ({"profiles": ["dev"]}, {}, ["debug", "web"]),
    ({"profiles": ["tools"]}, {}, ["admin", "debug", "web"]),
    ({}, {"COMPOSE_PROFILES": "perf, dev"}, ["cache", "debug", "web"]),
    ({}, {"COMPOSE_PROFILES": "perf", "STACKUP_PROFILES": "dev"}, ["debug", "web"]),
    ({"profiles": ["dev"]}, {"COMPOSE_PROFILES": "perf"}, ["debug", "web"]),
    ({"profiles": ["*"]}, {}, ["admin", "cache", "debug", "web"]),
    ({"services": ["admin"]}, {}, ["admin", "debug", "web"]),
])
def test_enabled_services(tmp_path: Path, kw: dict[str, object], environ: dict[str, str],
                          enabled: list[str]) -> None:
    assert sorted(run(tmp_path, environ=environ, **kw).project.services) == enabled


def test_disabled_are_removed_but_remembered(tmp_path: Path) -> None:
    loaded = run(tmp_path)
    assert loaded.disabled_services == ("admin", "cache", "debug")


def test_optional_dependency_on_disabled_service_is_dropped_with_a_warning(tmp_path: Path) -> None:
    loaded = run(tmp_path)
    assert loaded.project.services["web"].depends_on == {}
    assert loaded.warnings == ["service 'web': optional dependency 'cache' is disabled by profile `perf`; "
                               "starting without it"]
    enabled = run(tmp_path, profiles=["perf"])
    assert list(enabled.project.services["web"].depends_on) == ["cache"]


def test_required_dependency_on_disabled_service_is_an_error(tmp_path: Path) -> None:
    text = STACK.replace("required: false", "required: true") + "  tool:\n    image: t\n    links: [admin]\n"
    with pytest.raises(SpecError) as err:
        run(tmp_path, text)
    assert str(err.value).splitlines() == [
        "compose.yaml:5:7: services.web.depends_on.cache: depends on service 'cache' is disabled by "
        "profile `perf`; enable it with --profile perf",
        "compose.yaml:17:13: services.tool.links[0]: depends on service 'admin' is disabled by profile "
        "`tools`; enable it with --profile tools",
    ]
