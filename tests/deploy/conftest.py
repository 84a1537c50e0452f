"""Fixtures for deploy tests: a small fake Kubernetes API server on loopback, and stack loading.

The fake implements just what `stackup.deploy.kubernetes.cluster` uses (GET, LIST with label
selectors, server-side-apply PATCH, DELETE, dryRun) for the kinds stackup renders, storing
objects in memory, adding server-side fields (uid, resourceVersion, managedFields, defaults) the
way an API server does so the plan's diff is tested against what a real server returns. It is
driven through the real `kubernetes` client over HTTP. It is not Kubernetes: no controllers,
no admission but the namespace check (nothing is made in a namespace that does not exist), a
simplified merge (the applied object replaces the manager's fields).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from stackup.spec.loader import LoadedProject, load
from stackup.spec.options import LoadOptions

_PATH = re.compile(r"^/(api/v1|apis/[^/]+/[^/]+)(?:/namespaces/([^/]+))?/([a-z]+)(?:/([^/]+))?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet", "services": "Service",
          "networkpolicies": "NetworkPolicy", "configmaps": "ConfigMap", "secrets": "Secret",
          "persistentvolumeclaims": "PersistentVolumeClaim", "namespaces": "Namespace"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str


@dataclass
class FakeKube:
    objects: dict[tuple[str, str | None, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    host: str = ""
    _versions: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stored(self, namespace: str) -> dict[str, dict[str, Any]]:
        """`Kind/name` -> object, for one namespace."""
        return {f"{_KINDS[p]}/{n}": o for (p, ns, n), o in self.objects.items() if ns == namespace}

    def put(self, plural: str, namespace: str | None, obj: dict[str, Any]) -> None:
        """Store an object made by "someone else" (no stackup labels, for ownership tests)."""
        self.objects[(plural, namespace, obj["metadata"]["name"])] = obj


def _fields(value: Any) -> Any:
    """fieldsV1 for an applied value: `f:` for map keys, `k:{"name":..}` for named list items."""
    if isinstance(value, dict):
        return {f"f:{k}": _fields(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        return {"k:" + json.dumps({"name": i["name"]}, separators=(",", ":")): _fields(i) for i in value}
    return {}


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _handler(fake: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> tuple[dict[str, list[str]], str, str | None, str | None] | None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            fake.requests.append(Request(self.command, url.path, query, self.headers.get("Content-Type", "")))
            match = _PATH.match(url.path)
            if match is None or match.group(3) not in _KINDS:
                self._reply(404, _status(404, f"no route {url.path}"))
                return None
            return query, match.group(3), match.group(2), match.group(4)

        def do_GET(self) -> None:
            route = self._route()
            if route is None:
                return
            query, plural, ns, name = route
            with fake.lock:
                if name is not None:
                    obj = fake.objects.get((plural, ns, name))
                    if obj is None:
                        self._reply(404, _status(404, f'{plural} "{name}" not found'))
                    else:
                        self._reply(200, obj)
                    return
                selector = query.get("labelSelector", [""])[0]
                items = [o for (p, n, _), o in sorted(fake.objects.items()) if p == plural and n == ns
                         and _matches(o, selector)]
            self._reply(200, {"kind": _KINDS[plural] + "List", "apiVersion": "v1", "items": items})

        def do_PATCH(self) -> None:
            route = self._route()
            if route is None:
                return
            query, plural, ns, name = route
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.headers.get("Content-Type") != "application/apply-patch+yaml":
                self._reply(415, _status(415, "only server-side apply is served"))
                return
            if "fieldManager" not in query:
                self._reply(422, _status(422, "fieldManager is required for apply patch"))
                return
            if body.get("kind") != _KINDS[plural] or body.get("metadata", {}).get("name") != name:
                self._reply(422, _status(422, "kind or name does not match the path"))
                return
            if not _NAME.match(name or ""):
                self._reply(422, _status(422, f'metadata.name: Invalid value: "{name}"'))
                return
            with fake.lock:
                old = fake.objects.get((plural, ns, name))
                if old is None and ns and ("namespaces", None, ns) not in fake.objects:
                    # NamespaceLifecycle admission: nothing is made in a missing namespace, not
                    # even in a dry run (which never persists the namespace itself)
                    self._reply(404, _status(404, f'namespaces "{ns}" not found'))
                    return
                obj = copy.deepcopy(body)
                meta = obj["metadata"]
                meta.setdefault("namespace", ns) if ns else None
                meta["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
                meta["resourceVersion"] = str(next(fake._versions))
                meta["managedFields"] = [{"manager": query["fieldManager"][0], "operation": "Apply",
                                          "apiVersion": obj.get("apiVersion"), "fieldsType": "FieldsV1",
                                          "fieldsV1": _fields({k: v for k, v in body.items()
                                                               if k not in ("apiVersion", "kind")})}]
                if plural == "deployments":  # a server default nobody wrote
                    obj["spec"].setdefault("revisionHistoryLimit", 10)
                    obj["status"] = {"observedGeneration": 1}
                if query.get("dryRun") != ["All"]:
                    fake.objects[(plural, ns, name)] = obj
            self._reply(201 if old is None else 200, obj)

        def do_DELETE(self) -> None:
            route = self._route()
            if route is None:
                return
            query, plural, ns, name = route
            with fake.lock:
                obj = fake.objects.get((plural, ns, name or ""))
                if obj is None:
                    self._reply(404, _status(404, f'{plural} "{name}" not found'))
                    return
                if query.get("dryRun") != ["All"]:
                    del fake.objects[(plural, ns, name or "")]
            self._reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    return Handler


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    fake = FakeKube()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.host = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def load_stack(path: Path, env: dict[str, str] | None = None) -> LoadedProject:
    """Load a stack file as `stackup -f PATH config` does."""
    return load(LoadOptions(files=[path], environ={**os.environ, **(env or {})}, working_dir=path.parent))


@pytest.fixture
def loader() -> Any:
    return load_stack


def require_tool(tool: str, *check: str) -> None:
    """Skip locally when a peer tool is missing; in CI (`CI` set) a missing tool is a failure."""
    import shutil
    import subprocess

    missing = shutil.which(tool) is None
    if not missing and check:
        missing = subprocess.run(check, capture_output=True, check=False, timeout=60).returncode != 0
    if missing:
        reason = f"{tool} is not usable here ({' '.join(check) or 'not installed'}); " \
                 "run bash /work/shared/peers/setup.sh"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def tool() -> Any:
    return require_tool


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def swarm(tool: Any) -> Iterator[Any]:
    """A docker client on a single-node swarm: the daemon's own if it is a manager already, else
    one made here (`docker swarm init`) and left at the end, so swarm mode is as it was found."""
    import subprocess

    import docker  # type: ignore[import-untyped]

    tool("docker", "docker", "info")
    client = docker.from_env()
    inited = False
    had_gwbridge = bool(client.networks.list(names=["docker_gwbridge"]))
    if client.info()["Swarm"]["LocalNodeState"] != "active":
        subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=True,
                       capture_output=True, timeout=60)
        inited = True
    try:
        yield client
    finally:
        if inited:
            subprocess.run(["docker", "swarm", "leave", "--force"], check=False, capture_output=True,
                           timeout=60)
            if not had_gwbridge:  # `swarm init` made it (a bridge link); leaving keeps it
                subprocess.run(["docker", "network", "rm", "docker_gwbridge"], check=False,
                               capture_output=True, timeout=60)
        client.close()
