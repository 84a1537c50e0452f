"""`cp` both ways on the real engine: running and stopped containers, volumes, symlink escapes.

The escape tests plant symlinks inside the container that point at a host directory (absolute
and by `..`) and check that a copy resolves them inside the container's root: the host
directory stays untouched and the file lands in the container.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.base import ExecSpec
from stackup.runtime.native.runtime import NativeRuntime
from tests.e2e._engine import Engine, running_engine

pytestmark = pytest.mark.engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path / "root") as handle:
        yield handle


@pytest.fixture
def runtime(engine: Engine) -> NativeRuntime:
    return NativeRuntime(engine.client)


def tar_of(entries: dict[str, bytes | str | None]) -> io.BytesIO:
    """bytes: a file; str: a symlink to it; None: a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                info.size, info.mode = len(content), 0o640
                archive.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    return buffer


def members(runtime: NativeRuntime, ref: str, path: str) -> dict[str, bytes | str | None]:
    data = b"".join(runtime.copy_from(ref, path))
    found: dict[str, bytes | str | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for info in archive:
            if info.isdir():
                found[info.name] = None
            elif info.issym():
                found[info.name] = info.linkname
            else:
                handle = archive.extractfile(info)
                found[info.name] = handle.read() if handle else b""
    return found


def sh(runtime: NativeRuntime, ref: str, script: str) -> str:
    result = runtime.exec(ref, ExecSpec(command=("sh", "-c", script)))
    assert result.exit_code == 0, result
    return result.stdout.decode()


def test_copy_into_and_out_of_a_running_container(engine: Engine, runtime: NativeRuntime) -> None:
    record = engine.run("live", "sleep", "300")
    runtime.copy_to(record.id, "/tmp", tar_of({"app": None, "app/a.txt": b"alpha\n", "app/link": "a.txt"}))
    script = "cat /tmp/app/a.txt; readlink /tmp/app/link; stat -c '%u:%g %a' /tmp/app/a.txt"
    assert sh(runtime, record.id, script) == "alpha\na.txt\n0:0 640\n"
    expected = {"app": None, "app/a.txt": b"alpha\n", "app/link": "a.txt"}
    assert members(runtime, record.id, "/tmp/app") == expected
    assert members(runtime, record.id, "/tmp/app/a.txt") == {"a.txt": b"alpha\n"}


def test_copy_into_a_stopped_container_lands_in_its_filesystem(
    engine: Engine, runtime: NativeRuntime
) -> None:
    record = engine.run("stopped", "sleep", "300")
    runtime.stop_container(record.id, timeout_s=0)
    runtime.copy_to(record.id, "/etc", tar_of({"copied.conf": b"while stopped\n"}))
    assert members(runtime, record.id, "/etc/copied.conf") == {"copied.conf": b"while stopped\n"}
    runtime.start_container(record.id)  # the rootfs mounted for the copy was released again
    assert sh(runtime, record.id, "cat /etc/copied.conf") == "while stopped\n"


@pytest.mark.parametrize("stopped", [False, True], ids=["running", "stopped"])
def test_copy_under_a_volume_lands_in_the_volume(
    engine: Engine, runtime: NativeRuntime, stopped: bool
) -> None:
    volume = engine.name("data")
    record = engine.run(
        "vol", "sleep", "300", mounts=[{"kind": "volume", "source": volume, "target": "/data"}]
    )
    if stopped:
        runtime.stop_container(record.id, timeout_s=0)
    runtime.copy_to(record.id, "/data", tar_of({"in-volume.txt": b"kept\n"}))
    mountpoint = Path(engine.client.inspect_volume(volume).mountpoint)
    assert (mountpoint / "in-volume.txt").read_bytes() == b"kept\n"
    assert members(runtime, record.id, "/data/in-volume.txt") == {"in-volume.txt": b"kept\n"}


@pytest.mark.parametrize("link", ["{host}", "../../../../../../../..{host}"], ids=["absolute", "dotdot"])
def test_symlinks_never_lead_out_of_the_container(
    engine: Engine, runtime: NativeRuntime, tmp_path: Path, link: str
) -> None:
    host = tmp_path / "host-side"
    host.mkdir()
    (host / "secret").write_text("host file\n")
    record = engine.run("escape", "sleep", "300")
    sh(runtime, record.id, f"mkdir -p {host} && ln -s '{link.format(host=host)}' /tmp/out")
    runtime.copy_to(record.id, "/tmp/out", tar_of({"dropped": b"inside\n"}))
    assert sorted(p.name for p in host.iterdir()) == ["secret"]  # nothing written on the host
    assert sh(runtime, record.id, f"cat {host}/dropped") == "inside\n"  # resolved in the container
    with pytest.raises(NotFound):
        members(runtime, record.id, "/tmp/out/secret")  # the host's file is not readable either


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"../escape": b"x"}, "outside"),
        ({"/abs": b"x"}, "outside"),
    ],
    ids=["dotdot-member", "absolute-member"],
)
def test_archives_pointing_outside_are_refused(
    engine: Engine, runtime: NativeRuntime, entries: dict[str, bytes | str | None], message: str
) -> None:
    record = engine.run("refuse", "sleep", "300")
    with pytest.raises(RuntimeFailure, match=message):
        runtime.copy_to(record.id, "/tmp", tar_of(entries))


def test_device_nodes_are_refused(engine: Engine, runtime: NativeRuntime) -> None:
    record = engine.run("dev", "sleep", "300")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("null")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        archive.addfile(info)
    buffer.seek(0)
    with pytest.raises(RuntimeFailure, match="device"):
        runtime.copy_to(record.id, "/tmp", buffer)
    assert sh(runtime, record.id, "test -e /tmp/null || echo absent") == "absent\n"


def test_copy_to_a_missing_directory_is_not_found(engine: Engine, runtime: NativeRuntime) -> None:
    record = engine.run("missing", "sleep", "300")
    with pytest.raises(NotFound):
        runtime.copy_to(record.id, "/no/such/dir", tar_of({"f": b"x"}))
