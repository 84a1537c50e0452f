"""Registry pulls and pushes through the real CLI and engine, against real registries on loopback
(Debian's docker-registry: plain HTTP, and TLS + htpasswd), fed by skopeo or by `stackup push`."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackup.cli.pullstack import try_stack_pull
from stackup.registry.media import OCI_MANIFEST
from tests.e2e.conftest import IMAGE, Stackup, _leftovers
from tests.registry._images import Layout, digest_of, payload
from tests.registry._registry import Pki, RegistryServer, free_port, htpasswd_line, skopeo

USER, PASSWORD = "alice", "s3cret-pw"
BASE = {"etc/os-release": b"ID=test\n", "bin/base": payload("base", 300_000)}


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="stackup-e2e-registry-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(scratch: Path) -> Iterator[RegistryServer]:
    with RegistryServer(Path(tempfile.mkdtemp(dir=scratch))) as server:
        yield server


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Docker config for the CLI (never the machine's ~/.docker)."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path / "docker" / "config.json"


@pytest.fixture
def second_engine() -> Iterator[Stackup]:
    """Another engine with an empty store: what a pull brings is all it has."""
    root = Path(tempfile.mkdtemp(prefix="stackup-e2e-pull-"))
    su = Stackup(root=root)
    try:
        yield su
    finally:
        for name in sorted(su.projects):
            su.run("-p", name, "down", "-v", "-t", "1", check=False)
        su.run("engine", "stop", check=False)
        left = _leftovers(root)
        if not left:
            shutil.rmtree(root, ignore_errors=True)
        assert not left, f"the engine left these behind: {left}"


def _seed(server: RegistryServer, tmp_path: Path, repo: str, layers: list[dict[str, bytes]],
          tag: str = "v1", creds: str | None = None, made: tuple[Layout, str, bytes] | None = None,
          ) -> tuple[Layout, str]:
    """Copy a made-up image (or the one `made`) into the registry with skopeo; (its blobs, manifest
    digest)."""
    layout, digest, raw = made or _made(layers)
    name = f"oci-{repo.replace('/', '-')}-{tag}"
    directory = layout.write(tmp_path / name, {tag: (digest, raw, OCI_MANIFEST)})
    extra = ["--dest-creds", creds] if creds else []
    skopeo("copy", "--dest-tls-verify=false", *extra, f"oci:{directory}:{tag}",
           f"docker://{server.host}/{repo}:{tag}")
    return layout, digest


def _made(layers: list[dict[str, bytes]]) -> tuple[Layout, str, bytes]:
    layout = Layout()
    digest, raw = layout.image(layers)
    return layout, digest, raw


def _images(su: Stackup) -> dict[str, dict[str, object]]:
    listed = json.loads(su.run("image", "ls", "--format", "json").stdout)
    return {ref: image for image in listed for ref in image["refs"]}


def _store_files(root: Path) -> set[str]:
    """The store's files, once the engine's background unpacks (child processes) are done."""
    for _ in range(600):
        running = subprocess.run(["pgrep", "-f", f"images.unpackchild {root} "], capture_output=True,
                                 check=False)
        if running.returncode != 0:
            break
        time.sleep(0.1)
    images = root / "images"
    return {str(p.relative_to(images)) for sub in ("blobs", "layers", "records")
            for p in (images / sub).rglob("*")}


def test_pull_by_tag_then_by_digest(stackup: Stackup, registry: RegistryServer, tmp_path: Path,
                                    docker_config: Path) -> None:
    _, digest = _seed(registry, tmp_path, "team/app", [BASE, {"app/one": payload("one", 50_000)}])
    ref = f"{registry.host}/team/app:v1"
    result = stackup.run("image", "pull", ref)
    assert f"Pulled {ref} sha256:" in result.stdout
    assert result.stderr.count("Pull complete") == 2  # one line per layer
    image = _images(stackup)[ref]
    assert image["repo_digests"] == [f"{registry.host}/team/app@{digest}"]
    assert image["last_pulled"]
    assert len(image["layers"]) == 2  # type: ignore[arg-type]

    by_digest = stackup.run("image", "pull", "--quiet", f"{registry.host}/team/app@{digest}").stdout.strip()
    assert by_digest == image["id"]
    assert f"{registry.host}/team/app@{digest}" in _images(stackup)


def test_second_pull_downloads_only_new_layers(stackup: Stackup, registry: RegistryServer, tmp_path: Path,
                                               docker_config: Path) -> None:
    first, _ = _seed(registry, tmp_path, "shared/one", [BASE, {"app": payload("first", 40_000)}])
    second, _ = _seed(registry, tmp_path, "shared/two", [BASE, {"app": payload("second", 40_000)}])
    stackup.run("image", "pull", f"{registry.host}/shared/one:v1")
    mark = registry.log_mark()
    result = stackup.run("image", "pull", f"{registry.host}/shared/two:v1")
    lines = registry.requests_since(mark, "GET /v2/shared/two/blobs/")
    fetched = {line.split("/blobs/")[1].split()[0] for line in lines}
    new_layers = set(second.blobs) - set(first.blobs)
    assert fetched, "the second pull fetched nothing"
    assert fetched <= new_layers  # the shared base layer was never requested again
    assert "Already exists" in result.stderr


def test_corrupted_blob_is_refused_and_nothing_is_stored(stackup: Stackup, registry: RegistryServer,
                                                          tmp_path: Path, docker_config: Path) -> None:
    layers = [{"x": payload("x", 80_000)}, {"y": payload("y", 90_000)}]
    layout, digest = _seed(registry, tmp_path, "broken/app", layers)
    manifest = json.loads(layout.blobs[digest])
    victim = manifest["layers"][1]["digest"]
    data = registry.blob_data(victim)
    data.write_bytes(bytes(b ^ 0xFF for b in data.read_bytes()))  # same size, other bytes
    before = _store_files(stackup.root)
    result = stackup.run("image", "pull", f"{registry.host}/broken/app:v1", check=False)
    assert result.returncode == 1
    assert f"{registry.host}/broken/app:v1" in result.stderr and victim in result.stderr
    assert f"{registry.host}/broken/app:v1" not in _images(stackup)
    assert _store_files(stackup.root) == before  # no record, blob, layer or temporary file left


def test_a_damaged_image_is_pulled_but_never_runs(stackup: Stackup, registry: RegistryServer,
                                                  tmp_path: Path, docker_config: Path) -> None:
    """Its blobs are intact (the pull stores them), but the top layer does not unpack to the DiffID
    its config promises: the container is refused, saying why and what to do."""
    layout, _, raw = _made([BASE, {"app/bad": payload("bad", 20_000)}])
    manifest = json.loads(raw)
    config = json.loads(layout.blobs[manifest["config"]["digest"]])
    config["rootfs"]["diff_ids"][-1] = digest_of(b"another layer")
    config_raw = json.dumps(config, sort_keys=True).encode()
    manifest["config"] = {**manifest["config"], "digest": layout.add(config_raw), "size": len(config_raw)}
    raw = json.dumps(manifest, sort_keys=True).encode()
    _seed(registry, tmp_path, "damaged/app", [], made=(layout, layout.add(raw), raw))
    ref = f"{registry.host}/damaged/app:v1"
    directory = stackup.project(tmp_path, COMPOSE.format(ref=ref, policy="missing"), prefix="damaged")
    result = stackup.run("up", "-d", cwd=directory, check=False)
    assert result.returncode != 0
    assert "DiffID" in result.stderr and "damaged" in result.stderr and "pull it again" in result.stderr
    out = stackup.run("ps", "-a", "--format", "json", cwd=directory).stdout.strip()
    listed = json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines()]
    assert all(c["State"] != "running" for c in listed), listed


def test_a_pulled_image_pushed_elsewhere_keeps_its_digest(stackup: Stackup, registry: RegistryServer,
                                                          tmp_path: Path, docker_config: Path) -> None:
    _, digest = _seed(registry, tmp_path, "keep/src", [BASE, {"app/keep": payload("keep", 30_000)}])
    stackup.run("image", "pull", f"{registry.host}/keep/src:v1")
    stackup.run("image", "tag", f"{registry.host}/keep/src:v1", f"{registry.host}/keep/dst:v1")
    pushed = stackup.run("image", "push", f"{registry.host}/keep/dst:v1")
    assert f"Pushed {registry.host}/keep/dst:v1 {digest}" in pushed.stdout


def test_errors_name_the_image_and_what_to_do(stackup: Stackup, registry: RegistryServer,
                                              docker_config: Path) -> None:
    missing = stackup.run("image", "pull", f"{registry.host}/team/app:nope", check=False)
    assert missing.returncode == 1
    assert f"{registry.host}/team/app:nope: tag nope not found" in missing.stderr
    dead = f"127.0.0.1:{free_port()}"
    unreachable = stackup.run("image", "pull", f"{dead}/x/y:1", check=False)
    assert unreachable.returncode == 1
    assert f"cannot reach registry {dead}" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1


COMPOSE = """\
services:
  app:
    image: {ref}
    pull_policy: {policy}
    init: true
    command: ["sh", "-c", "cat /etc/flavour 2>/dev/null; exec sleep 3600"]
"""


def _up(su: Stackup, directory: Path, *args: str, check: bool = True) -> str:
    return su.run("up", "-d", *args, cwd=directory, check=check).stderr


def _running_image(su: Stackup, directory: Path) -> str:
    listed = json.loads(su.run("inspect", "app", cwd=directory).stdout)
    assert len(listed) == 1 and listed[0]["status"] == "running", listed
    return str(listed[0]["image_id"])


def test_push_then_pull_round_trips_and_up_honours_pull_policy(
        stackup: Stackup, second_engine: Stackup, registry: RegistryServer, tmp_path: Path,
        docker_config: Path) -> None:
    remote = f"{registry.host}/test/busybox:rt"
    stackup.run("image", "tag", IMAGE, remote)
    pushed = stackup.run("image", "push", remote)
    assert f"Pushed {remote} sha256:" in pushed.stdout
    original = _images(stackup)[remote]["id"]

    directory = second_engine.project(tmp_path, COMPOSE.format(ref=remote, policy="never"), prefix="pull")
    refused = second_engine.run("up", "-d", cwd=directory, check=False)
    assert refused.returncode == 1 and "pull_policy is never" in refused.stderr

    (directory / "compose.yaml").write_text(COMPOSE.format(ref=remote, policy="missing"))
    _up(second_engine, directory)  # pulled from the registry: the only place it exists here
    assert _running_image(second_engine, directory) == original
    out = second_engine.run("exec", "app", "sh", "-c", "echo round-trip", cwd=directory).stdout
    assert out.strip() == "round-trip"

    # a new image under the same tag: `missing` keeps the old one, `always` pulls and recreates
    stackup.run("image", "bootstrap", "busybox", remote)
    newer = _images(stackup)[remote]["id"]
    assert newer != original
    stackup.run("image", "push", remote)
    _up(second_engine, directory)
    assert _running_image(second_engine, directory) == original
    _up(second_engine, directory, "--pull", "always")
    assert _running_image(second_engine, directory) == newer
    (directory / "compose.yaml").write_text(COMPOSE.format(ref=remote, policy="always"))
    again = second_engine.run("up", "-d", cwd=directory)
    assert _running_image(second_engine, directory) == newer
    assert "Recreated" not in again.stderr  # pulled the same image: the container stays


def test_stack_pull_and_push(stackup: Stackup, registry: RegistryServer, tmp_path: Path,
                             docker_config: Path) -> None:
    _seed(registry, tmp_path, "stack/db", [BASE], tag="16")
    built = f"{registry.host}/stack/web:dev"
    stackup.run("image", "tag", IMAGE, built)
    compose = f"""\
services:
  db:
    image: {registry.host}/stack/db:16
  web:
    image: {built}
    build: .
    depends_on: [db]
  local:
    image: {IMAGE}
    pull_policy: never
"""
    directory = stackup.project(tmp_path, compose, prefix="pullstack")
    pulled = stackup.run("pull", "web", cwd=directory)
    assert "stack/db:16" not in pulled.stdout  # web only, not its dependency
    pulled = stackup.run("pull", "--include-deps", "web", cwd=directory)
    assert f"Pulled {registry.host}/stack/db:16 sha256:" in pulled.stdout
    everything = stackup.run("pull", "--ignore-pull-failures", cwd=directory)
    assert "local: skipped (pull_policy: never)" in everything.stderr
    pushed = stackup.run("push", cwd=directory)
    assert f"Pushed {built} sha256:" in pushed.stdout
    assert "db: skipped" in pushed.stderr  # not built here: never pushed back


def test_an_unchanged_stack_pulls_without_loading_the_model(
        stackup: Stackup, registry: RegistryServer, tmp_path: Path, docker_config: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`pullstack`: a second identical `stackup pull` is answered from what the first one decided
    plus the engine's present state, with the full path's output; a changed stack file, or an
    image removed meanwhile, is noticed."""
    _seed(registry, tmp_path, "fast/db", [BASE], tag="1")
    _seed(registry, tmp_path, "fast/web", [BASE, {"web": payload("fastweb", 20_000)}], tag="1")
    compose = f"""\
services:
  db:
    image: {registry.host}/fast/db:1
  web:
    image: {registry.host}/fast/web:1
    pull_policy: always
  local:
    image: {IMAGE}
    pull_policy: never
"""
    directory = stackup.project(tmp_path, compose, prefix="pullfast")
    stackup.run("pull", cwd=directory)  # full path: pulls both, records what it decided
    full = stackup.run("pull", "--include-deps", cwd=directory)  # another command line: full path again
    assert "db: skipped (already present)" in full.stderr
    assert f"Pulled {registry.host}/fast/web:1 sha256:" in full.stdout

    monkeypatch.setenv("STACKUP_ROOT", str(stackup.root))
    monkeypatch.chdir(directory)
    capsys.readouterr()
    assert try_stack_pull(["pull"]) == 0
    fast = capsys.readouterr()
    assert (fast.out, fast.err) == (full.stdout, full.stderr)

    stackup.run("image", "rm", f"{registry.host}/fast/db:1")
    assert try_stack_pull(["pull"]) == 0
    assert f"Pulled {registry.host}/fast/db:1 sha256:" in capsys.readouterr().out
    assert f"{registry.host}/fast/db:1" in _images(stackup)

    (directory / "compose.yaml").write_text(compose + "# edited\n")
    assert try_stack_pull(["pull"]) is None  # the stack changed: the full path decides
    assert try_stack_pull(["pull", "web"]) is None  # never run in full: nothing recorded


@pytest.fixture(scope="module")
def secure_registry(scratch: Path) -> Iterator[RegistryServer]:
    root = Path(tempfile.mkdtemp(dir=scratch))
    pki = Pki(root / "pki")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(htpasswd_line(USER, PASSWORD) + "\n")
    with RegistryServer(root, tls=pki.issue("server"), htpasswd=htpasswd) as server:
        yield server


def test_login_then_pull_from_a_tls_registry_with_htpasswd(
        stackup: Stackup, secure_registry: RegistryServer, tmp_path: Path, docker_config: Path) -> None:
    host = secure_registry.host
    _seed(secure_registry, tmp_path, "private/app", [BASE], creds=f"{USER}:{PASSWORD}")
    ref = f"{host}/private/app:v1"
    anonymous = stackup.run("image", "pull", ref, check=False)
    assert anonymous.returncode == 1
    assert f"run `stackup login {host}`" in anonymous.stderr
    stackup.run("login", host, "-u", USER, "--password-stdin", stdin=PASSWORD + "\n")
    result = stackup.run("image", "pull", ref)
    assert f"Pulled {ref} sha256:" in result.stdout
    log = stackup.root / "engine.log"
    assert PASSWORD not in (log.read_text(errors="replace") if log.exists() else "")


@pytest.mark.parametrize("platform", [[], ["--platform", "linux/amd64"]], ids=["fast-path", "full-cli"])
def test_images_pulled_together_download_a_shared_base_once(
        platform: list[str], stackup: Stackup, registry: RegistryServer, tmp_path: Path,
        docker_config: Path) -> None:
    group = f"together{len(platform)}"
    base = {"base/lib": payload(group, 400_000)}
    refs = []
    for i in range(3):
        layout, digest = _seed(registry, tmp_path, f"{group}/app{i}", [base, {"own": payload(str(i))}])
        refs.append(f"{registry.host}/{group}/app{i}:v1")
    base_digest = json.loads(layout.blobs[digest])["layers"][0]["digest"]
    mark = registry.log_mark()
    result = stackup.run("image", "pull", *platform, *refs)
    assert all(f"Pulled {ref} sha256:" in result.stdout for ref in refs)
    assert len(registry.requests_since(mark, f"GET /v2/{group}/")) >= 3
    assert len(registry.requests_since(mark, f"/blobs/{base_digest}")) == 1
