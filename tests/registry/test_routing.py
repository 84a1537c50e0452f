"""Mirrors for docker.io and redirects to blob storage, against the real registry on loopback.

No traffic may leave the machine: `getaddrinfo` is wrapped to record (and refuse) every name other
than loopback, which also proves a serving mirror means Docker Hub is never contacted.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stackup.registry.client import RegistryClient
from stackup.registry.errors import RegistryUnreachable
from stackup.registry.media import OCI_MANIFEST
from stackup.registry.pull import pull
from stackup.registry.reference import Reference
from stackup.registry.sinks import DirectorySink
from tests.registry._images import Layout, payload
from tests.registry._registry import RegistryServer, skopeo

Client = Callable[..., RegistryClient]


@pytest.fixture
def outside_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("127.0.0.1", "localhost", "::1"):
            asked.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "outside names are refused in tests")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return asked


def _push(server: RegistryServer, tmp_path: Path, repo: str) -> Layout:
    layout = Layout()
    digest, raw = layout.image([{"m": payload(repo, 30_000)}, {"n": b"n"}])
    directory = layout.write(tmp_path / "oci", {"1": (digest, raw, OCI_MANIFEST)})
    skopeo("copy", "--dest-tls-verify=false", f"oci:{directory}:1", f"docker://{server.host}/{repo}:1")
    return layout


def test_mirror_serves_docker_hub_names(plain_registry: RegistryServer, tmp_path: Path, make_client: Client,
                                        outside_names: list[str]) -> None:
    _push(plain_registry, tmp_path, "library/mirrored")
    client = make_client(mirrors=(f"http://{plain_registry.host}",))
    mark = plain_registry.log_mark()
    pulled = pull(client, Reference.parse("mirrored:1"), DirectorySink(tmp_path / "sink"))
    assert len(pulled.downloaded) == 2
    assert len(plain_registry.requests_since(mark, '"GET /v2/library/mirrored/blobs/')) == 3
    assert outside_names == []  # Docker Hub was never looked up, let alone contacted


def test_mirror_without_the_image_falls_back_to_docker_hub(plain_registry: RegistryServer, tmp_path: Path,
                                                           make_client: Client,
                                                           outside_names: list[str]) -> None:
    client = make_client(mirrors=(f"http://{plain_registry.host}",))
    mark = plain_registry.log_mark()
    with pytest.raises(RegistryUnreachable, match=r"cannot reach registry docker\.io"):
        pull(client, Reference.parse("not-mirrored:1"), DirectorySink(tmp_path / "sink"))
    assert plain_registry.requests_since(mark, '"GET /v2/library/not-mirrored/manifests/1')
    assert outside_names and set(outside_names) == {"registry-1.docker.io"}


class _Redirector:
    """A front that answers every request with 307 to the registry (as S3-backed registries do)."""

    def __init__(self, target: str) -> None:
        self.redirected: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _redirect(self) -> None:
                owner.redirected.append(f"{self.command} {self.path}")
                self.send_response(307)
                self.send_header("Location", f"http://{target}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = _redirect

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def redirector(plain_registry: RegistryServer) -> Iterator[_Redirector]:
    front = _Redirector(plain_registry.host)
    front.thread.start()
    try:
        yield front
    finally:
        front.httpd.shutdown()
        front.httpd.server_close()
        front.thread.join(5)


def test_redirects_are_followed(plain_registry: RegistryServer, redirector: _Redirector, tmp_path: Path,
                                make_client: Client) -> None:
    layout = _push(plain_registry, tmp_path, "redirected/app")
    sink = DirectorySink(tmp_path / "sink")
    pulled = pull(make_client(), Reference.parse(f"{redirector.host}/redirected/app:1"), sink)
    blob_hops = [r for r in redirector.redirected if "/blobs/" in r]
    assert len(blob_hops) == 3  # config + 2 layers, each bounced to the registry and fetched there
    for digest in (pulled.config_digest, *pulled.downloaded):
        assert sink.has(digest) and layout.blobs[digest] == (sink.root / "blobs" / "sha256" /
                                                             digest.removeprefix("sha256:")).read_bytes()


class _FlakyProxy:
    """Forwards to the registry, but cuts the first download of `victim` off halfway through."""

    def __init__(self, target: str) -> None:
        self.victim = ""
        self.blob_gets: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                upstream = http.client.HTTPConnection(target, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                upstream.request(self.command, self.path, headers=headers)
                response = upstream.getresponse()
                body = response.read()
                upstream.close()
                cut = False
                if self.command == "GET" and "/blobs/" in self.path:
                    owner.blob_gets.append(self.path)
                    cut = owner.victim in self.path and owner.blob_gets.count(self.path) == 1
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body[: len(body) // 2] if cut else body)
                if cut:
                    self.close_connection = True

            do_GET = do_HEAD = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def flaky(plain_registry: RegistryServer) -> Iterator[_FlakyProxy]:
    proxy = _FlakyProxy(plain_registry.host)
    proxy.thread.start()
    try:
        yield proxy
    finally:
        proxy.httpd.shutdown()
        proxy.httpd.server_close()
        proxy.thread.join(5)


def test_a_cut_download_is_retried_and_never_half_stored(plain_registry: RegistryServer, flaky: _FlakyProxy,
                                                         tmp_path: Path, make_client: Client) -> None:
    layout = _push(plain_registry, tmp_path, "flaky/app")
    ref = Reference.parse(f"{flaky.host}/flaky/app:1")
    big = max(layout.blobs, key=lambda d: len(layout.blobs[d]))
    flaky.victim = big
    sink = DirectorySink(tmp_path / "once")
    with pytest.raises(RegistryUnreachable, match=rf"download of {big} failed 1 times"):
        pull(make_client(retries=1), ref, sink)
    assert not sink.has(big) and sink.partials() == []

    flaky.blob_gets.clear()
    sink = DirectorySink(tmp_path / "retried")
    pulled = pull(make_client(retries=3), ref, sink)
    assert sink.has(big) and big in pulled.downloaded and sink.partials() == []
    assert sum(big in path for path in flaky.blob_gets) == 2  # cut once, fetched whole the second time
