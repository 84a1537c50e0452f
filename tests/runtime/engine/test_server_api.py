"""The API's pure parts: the OpenAPI document, inheritance from the image, log following, and
the client's error mapping. No engine process is needed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from stackup.errors import EngineUnavailable, NotFound, RuntimeFailure
from stackup.runtime.engine.api.app import all_endpoints, openapi_document
from stackup.runtime.engine.containers.blueprint import build_config, command_line
from stackup.runtime.engine.containers.logstream import LogReader, stream_logs
from stackup.runtime.native.answers import raise_for_answer
from stackup.runtime.native.client import EngineClient
from stackup.runtime.native.unixhttp import Answer, query
from stackup.runtime.wire.imageconfig import ImageConfig
from stackup.runtime.wire.images import Image
from stackup.runtime.wire.models import ContainerCreate, MountKind, MountRequest

IMAGE = Image(
    id="sha256:" + "0" * 64,
    config=ImageConfig(
        entrypoint=("/entry",), cmd=("serve",), env=("PATH=/bin", "A=image"), working_dir="/app",
        user="app", stop_signal="SIGQUIT",
    ),
)  # fmt: skip


def test_openapi_documents_every_route_with_schemas() -> None:
    endpoints = all_endpoints()
    doc = openapi_document(endpoints, "test")
    for endpoint in endpoints:
        template = endpoint.path.replace(":path}", "}")  # OpenAPI has no Starlette converters
        assert endpoint.method.lower() in doc["paths"][template]
    assert not [path for path in doc["paths"] if ":" in path]
    schemas = doc["components"]["schemas"]
    for name in ("ContainerCreate", "ContainerRecord", "VolumeRecord", "Event", "LogLine", "ErrorBody"):
        assert name in schemas
    logs = doc["paths"]["/containers/{ref}/logs"]["get"]
    assert "application/x-ndjson" in logs["responses"]["200"]["content"]


@pytest.mark.parametrize(
    ("entrypoint", "command", "expected"),
    [
        (None, None, ("/entry", "serve")),
        (None, ("other",), ("/entry", "other")),
        (("/bin/sh", "-c"), None, ("/bin/sh", "-c")),  # a new entrypoint drops the image's command
        ((), ("echo", "hi"), ("echo", "hi")),
    ],
)
def test_command_line_follows_docker_rules(
    entrypoint: tuple[str, ...] | None, command: tuple[str, ...] | None, expected: tuple[str, ...]
) -> None:
    request = ContainerCreate(name="c", image="img", entrypoint=entrypoint, command=command)
    assert command_line(request, IMAGE) == expected


def test_config_inherits_from_image_and_resolves_volumes(tmp_path: Path) -> None:
    request = ContainerCreate(
        name="web",
        image="img",
        env={"A": "request"},
        mounts=(MountRequest(kind=MountKind.VOLUME, target="/data", source="vol"),),
        options={"init": True},
    )
    config = build_config(
        request, IMAGE, container_id="c" * 64, rootfs=tmp_path / "rootfs", engine_root=tmp_path,
        volume_dir=lambda name: tmp_path / "volumes" / name / "_data",
    )  # fmt: skip
    assert config.env == {"PATH": "/bin", "A": "request"}
    assert str(config.cwd) == "/app"
    assert config.user == "app"
    assert config.stop_signal.name == "SIGQUIT"
    assert config.init
    assert config.mounts[0].source == tmp_path / "volumes" / "vol" / "_data"


def test_options_cannot_set_engine_fields() -> None:
    with pytest.raises(ValidationError, match="rootfs"):
        ContainerCreate(name="web", image="img", options={"rootfs": "/"})  # type: ignore[arg-type]


def test_log_reader_joins_partials_and_never_repeats(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_text("2026-01-01T00:00:00.000000001Z stdout P hel\n")
    with LogReader(log) as reader:  # it holds the files open, to read across a rotation
        assert reader.read_new() == []
        with log.open("a") as handle:
            handle.write("2026-01-01T00:00:00.5Z stdout F lo\n2026-01-01T00:00:01Z stderr F oops\n")
        lines = reader.read_new()
        assert [(line.stream, line.text) for line in lines] == [("stdout", "hello"), ("stderr", "oops")]
        assert reader.read_new() == []


def test_follow_ends_when_the_container_is_done(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_text("2026-01-01T00:00:00Z stdout F one\n")
    polls = 0

    async def finished() -> bool:
        nonlocal polls
        polls += 1
        if polls == 2:
            with log.open("a") as handle:
                handle.write("2026-01-01T00:00:01Z stdout F two\n")
        return polls >= 3

    async def collect() -> list[str]:
        stream = stream_logs(log, since=None, tail=None, follow=True, finished=finished)
        return [line.text async for line in stream]

    assert asyncio.run(collect()) == ["one", "two"]


def test_error_answers_map_to_stackup_errors() -> None:
    with pytest.raises(NotFound, match="no such container"):
        raise_for_answer(Answer(404, b'{"kind": "not_found", "message": "no such container: x"}'))
    with pytest.raises(RuntimeFailure, match="HTTP 502: bad gateway"):
        raise_for_answer(Answer(502, b"bad gateway"))
    raise_for_answer(Answer(204, b""))


def test_no_engine_is_engine_unavailable(tmp_path: Path) -> None:
    with EngineClient(tmp_path / "absent.sock") as client, pytest.raises(EngineUnavailable):
        client.ping()


def test_query_strings_repeat_list_keys_and_spell_booleans() -> None:
    assert query({"label": ["a=1", "b"], "force": True, "follow": False, "tail": None}) == (
        "?label=a%3D1&label=b&force=true&follow=false"
    )
    assert query({}) == ""
