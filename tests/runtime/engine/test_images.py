"""The image store: references, rootfs imports, lookups, layer sharing, removal and pruning."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.engine.images.ref import ImageRef
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.images.testimage import build_busybox_rootfs, ensure_busybox_image
from stackup.runtime.wire.images import Image
from stackup.runtime.wire.paths import EnginePaths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the store unpacks layers as root")


@pytest.fixture
def store(stackup_root: Path) -> ImageStore:
    return ImageStore(EnginePaths.from_env())


def rootfs(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    root = tmp_path / name
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.mark.parametrize(("text", "full", "familiar"), [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/me/app", "docker.io/me/app:latest", "me/app:latest"),
    ("index.docker.io/me/app:v1", "docker.io/me/app:v1", "me/app:v1"),
    ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
    ("ghcr.io/o/r/app:1.0", "ghcr.io/o/r/app:1.0", "ghcr.io/o/r/app:1.0"),
    ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64,
     "busybox@sha256:" + "a" * 64),
])
def test_references_normalise_like_docker(text: str, full: str, familiar: str) -> None:
    ref = ImageRef.parse(text)
    assert (ref.full, ref.familiar) == (full, familiar)


@pytest.mark.parametrize("text", ["Busybox", "busybox:", "a//b", "busybox@sha256:zz", "-x"])
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(RuntimeFailure, match=r"invalid (reference|digest)"):
        ImageRef.parse(text)


def test_busybox_image_has_a_usable_rootfs(store: ImageStore, tmp_path: Path) -> None:
    image = ensure_busybox_image(store)
    assert image.refs == ("stackup-test/busybox:latest",)
    assert image.config.cmd == ("sh",)
    assert ensure_busybox_image(store).id == image.id  # second call reuses it
    (diff,) = store.layer_dirs(image)
    assert os.readlink(diff / "bin/sh") == "busybox"
    for applet in ("wget", "nc", "httpd", "ip", "nslookup", "top"):
        assert (diff / "bin" / applet).is_symlink()
    assert "app:x:1000:1000" in (diff / "etc/passwd").read_text()
    assert "nobody:x:65534" in (diff / "etc/passwd").read_text()
    assert oct(os.stat(diff / "tmp").st_mode & 0o7777) == "0o1777"
    assert os.stat(diff / "home/app").st_uid == 1000
    for placeholder in ("etc/hosts", "etc/resolv.conf", "etc/hostname", "proc", "sys", "dev"):
        assert (diff / placeholder).exists()


def test_extra_files_are_written_and_scripts_made_executable(tmp_path: Path) -> None:
    root = build_busybox_rootfs(tmp_path / "r", {"/srv/run.sh": b"#!/bin/sh\necho hi\n", "srv/a.txt": b"a"})
    assert os.access(root / "srv/run.sh", os.X_OK)
    assert not os.access(root / "srv/a.txt", os.X_OK)
    with pytest.raises(ValueError, match="inside the rootfs"):
        build_busybox_rootfs(tmp_path / "r2", {"../x": b""})


def test_import_rootfs_with_config_and_lookups(store: ImageStore, tmp_path: Path) -> None:
    src = rootfs(tmp_path, "app", {"app/main": b"main"})
    config = {"Env": ["A=1"], "Entrypoint": ["/app/main"], "Cmd": None, "WorkingDir": "/app",
              "User": "1000", "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
              "Labels": {"k": "v"}, "StopSignal": "SIGINT",
              "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Retries": 3}}
    image = store.import_rootfs(src, "example.org/team/app:v1", config=config)
    assert image.refs == ("example.org/team/app:v1",)
    cfg = image.config
    assert (cfg.env, cfg.entrypoint, cfg.cmd, cfg.working_dir, cfg.user) == (
        ("A=1",), ("/app/main",), None, "/app", "1000")
    assert (cfg.exposed_ports, cfg.volumes, cfg.labels, cfg.stop_signal) == (
        ("80/tcp",), ("/data",), {"k": "v"}, "SIGINT")
    assert cfg.healthcheck is not None and cfg.healthcheck.retries == 3
    for name in (image.id, image.id[7:19], image.id[7:], "example.org/team/app:v1"):
        assert store.get(name).id == image.id
    assert [i.id for i in store.list()] == [image.id]
    assert Image.model_validate_json(image.model_dump_json()) == image


def test_import_rootfs_from_a_tar(store: ImageStore, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    (tmp_path / "fs.tar.gz").write_bytes(buffer.getvalue())
    image = store.import_rootfs(tmp_path / "fs.tar.gz", "hello")
    assert image.refs == ("hello:latest",)
    assert image.layers[0].media_type.endswith("+gzip")
    (diff,) = store.layer_dirs(image)
    assert (diff / "hello.txt").read_bytes() == b"hi"


def test_not_found_suggests_and_explains(store: ImageStore, tmp_path: Path) -> None:
    store.import_rootfs(rootfs(tmp_path, "r", {"f": b"1"}), "busybox")
    with pytest.raises(NotFound) as caught:
        store.get("busybx")
    message = str(caught.value)
    assert message.startswith('image "busybx" not found')
    assert "did you mean `busybox:latest`?" in message
    assert "stackup image import" in message


def test_identical_layers_are_unpacked_once(store: ImageStore, tmp_path: Path) -> None:
    src = rootfs(tmp_path, "r", {"etc/os-release": b"ID=test\n"})
    first = store.import_rootfs(src, "one", config={"Cmd": ["one"]})
    (layer,) = store.layer_dirs(first)
    marker = os.stat(layer).st_ino
    second = store.import_rootfs(src, "two", config={"Cmd": ["two"]})
    assert first.id != second.id
    assert store.layer_dirs(second) == [layer]
    assert os.stat(layer).st_ino == marker
    assert len([p for p in store.paths.layers.iterdir()]) == 1


def test_concurrent_imports_of_one_layer_do_not_corrupt(store: ImageStore, tmp_path: Path) -> None:
    src = rootfs(tmp_path, "r", {f"d/{i}": str(i).encode() * 1000 for i in range(50)})
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            store.import_rootfs(src, f"same:{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    (layer,) = {d for n in range(4) for d in store.layer_dirs(store.get(f"same:{n}"))}
    assert sorted(p.name for p in (layer / "d").iterdir()) == sorted(str(i) for i in range(50))
    assert not [p for p in store.paths.layers.iterdir() if p.name.startswith(".tmp")]


def test_remove_untags_then_deletes_and_collects_garbage(store: ImageStore, tmp_path: Path) -> None:
    image = store.import_rootfs(rootfs(tmp_path, "r", {"f": b"1"}), "a")
    store.tag("a", "b")
    with pytest.raises(RuntimeFailure, match="tagged as a:latest, b:latest"):
        store.remove(image.id)
    removal = store.remove("b")
    assert (removal.untagged, removal.deleted) == (("b:latest",), ())
    with pytest.raises(RuntimeFailure, match="used by a container"):
        store.remove("a", in_use=frozenset({image.id}))
    removal = store.remove("a")
    assert (removal.untagged, removal.deleted) == (("a:latest",), (image.id,))
    assert store.list() == []
    assert list(store.paths.layers.iterdir()) == []
    assert list((store.paths.blobs / "sha256").iterdir()) == []
    with pytest.raises(NotFound):
        store.get("a")


def test_force_removes_an_image_with_many_tags(store: ImageStore, tmp_path: Path) -> None:
    image = store.import_rootfs(rootfs(tmp_path, "r", {"f": b"1"}), "a")
    store.tag(image.id, "b")
    assert store.remove(image.id, force=True).deleted == (image.id,)


def test_prune_keeps_tagged_and_in_use_images(store: ImageStore, tmp_path: Path) -> None:
    src = rootfs(tmp_path, "r", {"f": b"1"})
    old = store.import_rootfs(src, "app", config={"Cmd": ["old"]})
    used = store.import_rootfs(src, "used", config={"Cmd": ["used"]})
    store.import_rootfs(src, "used", config={"Cmd": ["new-used"]})  # `used` moves away: dangling
    new = store.import_rootfs(src, "app", config={"Cmd": ["new"]})  # `app` moves away from `old`
    assert store.get(old.id).refs == ()
    assert store.prune({used.id}) == [old.id]
    assert {i.id for i in store.list()} >= {used.id, new.id}
    assert len(list(store.paths.layers.iterdir())) == 1  # still shared by the survivors
    remaining = sorted(i.id for i in store.list())
    assert store.prune(set(), dangling_only=False) == remaining
    assert store.list() == []
    assert list(store.paths.layers.iterdir()) == []
