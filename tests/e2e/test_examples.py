"""The examples a newcomer runs, run here the way the README says, on a real engine.

One engine root for the module (`stackup` fixture): the webapp and ci tests share its images, so
the Debian base is imported once (debootstrap itself is cached per machine under
/var/cache/stackup) and the three Debian images are built once. The webapp and ci examples are
copied to a temporary directory first: the watch test edits the application's code.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.e2e.conftest import Stackup

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PYTHON_STACKUP = f"{sys.executable} -m stackup"
GUARD_S = 30.0  # turns a hang into a failure; nothing asserts on durations

pytestmark = pytest.mark.engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    su: Stackup, argv: list[str], cwd: Path, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """A script or command with the test's engine root, this checkout's stackup and `env`."""
    full = {**su.env(), "PYTHONPATH": str(REPO), "STACKUP": PYTHON_STACKUP, **env}
    return subprocess.run(
        argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout, check=False
    )


def stackup_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "stackup", *args]


def get(url: str, data: dict[str, str] | None = None) -> str:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def poll(url: str, expected: str, timeout_s: float = GUARD_S) -> float:
    """Seconds until `url` answers with `expected` in its body."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if expected in get(url):
                return time.monotonic() - start
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.01)
    raise AssertionError(f"{url} never answered with {expected!r}")


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout


def unique(su: Stackup, prefix: str) -> str:
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    su.projects.add(name)  # the fixture's finalizer takes it down (-v) whatever happens
    return name


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    """examples/webapp and examples/ci side by side in a fresh temporary directory (the webapp
    test edits the code; the images, built from the same files, come from the module's cache)."""
    root = tmp_path / "examples"
    for name in ("webapp", "ci"):
        shutil.copytree(
            EXAMPLES / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
        )
    return root


def test_quickstart_brings_hello_up_and_down(stackup: Stackup) -> None:
    port, name = free_port(), unique(stackup, "hello")
    out = ok(
        run(
            stackup,
            ["./examples/quickstart.sh"],
            REPO,
            QUICKSTART_SKIP_SETUP="1",
            HELLO_PORT=str(port),
            COMPOSE_PROJECT_NAME=name,
        )
    )
    assert "<h1>hello from stackup</h1>" in out
    assert f"127.0.0.1:{port}->8080/tcp" in out  # `stackup ps` showed the published port
    assert ok(run(stackup, stackup_cmd("-p", name, "ps", "-a", "--format", "json"), REPO)).strip() in (
        "",
        "[]",
    )


def test_webapp_runs_keeps_data_and_reloads_edits(stackup: Stackup, copies: Path) -> None:
    webapp = copies / "webapp"
    port, name = free_port(), unique(stackup, "webapp")
    env = {"WEBAPP_PORT": str(port), "COMPOSE_PROJECT_NAME": name}
    out = ok(run(stackup, ["./run.sh"], webapp, **env))
    url = f"http://127.0.0.1:{port}/"
    assert f"webapp is up: {url}" in out
    home = get(url)
    assert home.startswith("webapp v1\nhello from the webapp\nvisits: 1\n")
    assert "- the migration job ran before the app started" in home
    get(f"{url}api/notes", {"text": "kept across down and up"})
    ps = json.loads(ok(run(stackup, stackup_cmd("ps", "-a", "--format", "json"), webapp, **env)))
    states = {c["Service"]: (c["State"], c.get("ExitCode")) for c in ps}
    assert states["migrate"] == ("exited", 0) and states["app"][0] == "running", states

    # The database lives in the named volume: `down` (without -v) and `up` keep the note.
    ok(run(stackup, stackup_cmd("down"), webapp, **env))
    ok(run(stackup, stackup_cmd("up", "-d", "--wait"), webapp, **env))
    assert "- kept across down and up" in get(url)

    # develop.watch: routes.py is synced and reloaded in place; server.py restarts the process.
    watch = subprocess.Popen(
        stackup_cmd("watch", "--no-up"),
        cwd=webapp,
        text=True,
        env={**stackup.env(), "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert watch.stdout is not None
        for line in watch.stdout:
            if "watching" in line:
                break
        routes = webapp / "app" / "src" / "routes.py"
        for version in ("v2", "v3"):
            routes.write_text(
                routes.read_text().replace('BANNER = "webapp v', f'BANNER = "webapp {version}"  # v', 1)
            )
            seconds = poll(url, f"webapp {version}\n")
            print(f"routes.py edit -> visible in the app: {seconds * 1000:.0f} ms")
        server = webapp / "app" / "src" / "server.py"
        before = ok(run(stackup, stackup_cmd("logs", "app"), webapp, **env)).count("listening on :8000")
        server.write_text(server.read_text().replace("listening on", "restarted, listening on"))
        poll(url, "webapp v3\n")

        def restarted() -> bool:
            logs = ok(run(stackup, stackup_cmd("logs", "app"), webapp, **env))
            return logs.count("listening on :8000") > before and "restarted, listening" in logs

        deadline = time.monotonic() + GUARD_S
        while not restarted():
            assert time.monotonic() < deadline, "server.py was never synced and restarted"
            time.sleep(0.2)
        poll(url, "webapp v3\n")
    finally:
        watch.terminate()
        watch.wait(timeout=GUARD_S)
        if watch.stdout is not None:
            watch.stdout.close()
    ok(run(stackup, stackup_cmd("down", "-v"), webapp, **env))


def test_ci_exit_code_from_tests_and_the_same_tests_through_the_plugin(
    stackup: Stackup, copies: Path
) -> None:
    ci = copies / "ci"
    name = unique(stackup, "webappci")
    env = {"WEBAPP_PORT": str(free_port()), "COMPOSE_PROJECT_NAME": name}
    passed = run(stackup, stackup_cmd("up", "--build", "--exit-code-from", "tests"), ci, **env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "5 passed" in passed.stdout
    failed = run(
        stackup, stackup_cmd("up", "--exit-code-from", "tests"), ci, EXPECTED_BANNER="webapp v9", **env
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "1 failed, 4 passed" in failed.stdout
    ok(run(stackup, stackup_cmd("down", "-v"), ci, **env))

    plugin = run(
        stackup, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ci / "tests")], ci
    )
    assert plugin.returncode == 0, plugin.stdout + plugin.stderr
    assert "5 passed" in plugin.stdout


# --- compose-compat: one stack file, two tools ---------------------------------------------------


def _ports(entries: list[Any]) -> list[str]:
    """`127.0.0.1:8081:8080/tcp` from either tool's form."""
    out = []
    for p in entries:
        if isinstance(p, str):
            out.append(p)
        else:
            out.append(f"{p['host_ip']}:{p['published']}:{p['target']}/{p['protocol']}")
    return sorted(out)


def _essentials(config: dict[str, Any]) -> dict[str, Any]:
    """What both tools must agree on, per service (each adds defaults the other leaves out)."""
    out = {}
    for name, s in config["services"].items():
        build = s.get("build") or {}
        out[name] = {
            "environment": s.get("environment", {}),
            "labels": s.get("labels", {}),
            "command": s.get("command"),
            "image": s.get("image"),
            "init": s.get("init"),
            "profiles": s.get("profiles", []),
            "ports": _ports(s.get("ports", [])),
            "build": {"context": build.get("context"), "args": build.get("args", {})},
            "healthcheck": {k: (s.get("healthcheck") or {}).get(k) for k in ("test", "interval", "retries")},
            "depends_on": sorted(s.get("depends_on", {})),
        }
    return out


@pytest.fixture
def compat_base(stackup: Stackup) -> Iterator[str]:
    """The busybox base under a unique name, in stackup's store and loaded into Docker."""
    ref = f"stackup-compat-{uuid.uuid4().hex[:6]}/busybox:latest"
    cwd = EXAMPLES / "compose-compat"
    ok(run(stackup, stackup_cmd("image", "bootstrap", "busybox", ref), cwd))
    try:
        saved = subprocess.run(
            stackup_cmd("image", "save", ref),
            env={**stackup.env(), "PYTHONPATH": str(REPO)},
            capture_output=True,
            check=True,
            timeout=120,
        )
        subprocess.run(["docker", "load"], input=saved.stdout, capture_output=True, check=True, timeout=120)
        yield ref
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)


def test_compose_compat_same_config_and_same_answers(stackup: Stackup, compat_base: str) -> None:
    cwd = EXAMPLES / "compose-compat"
    name = unique(stackup, "compat")
    yaml = YAML(typ="safe")
    for profiles in ([], ["--profile", "debug"]):
        env = {"BASE_IMAGE": compat_base, "COMPOSE_PROJECT_NAME": name}
        theirs = yaml.load(ok(run(stackup, ["docker-compose", *profiles, "config"], cwd, **env)))
        ours = json.loads(ok(run(stackup, stackup_cmd(*profiles, "config", "--format", "json"), cwd, **env)))
        mine, compose = _essentials(ours), _essentials(theirs)
        # docker-compose v1 lists profile-disabled services in `config`; stackup leaves them out.
        assert mine == {k: v for k, v in compose.items() if profiles or "debug" not in v["profiles"]}
        assert mine["web"]["environment"]["GREETING"] == "hello from a Compose file"  # from .env
        assert mine["web"]["environment"]["TZ"] == "UTC"  # from extends

    answers: dict[str, list[str]] = {}
    try:
        for tool, up, probe in (
            (
                "stackup",
                stackup_cmd("up", "-d", "--wait"),
                stackup_cmd("--profile", "debug", "run", "--rm", "probe"),
            ),
            (
                "docker-compose",
                ["docker-compose", "up", "-d", "--build"],
                ["docker-compose", "--profile", "debug", "run", "--rm", "-T", "probe"],
            ),
        ):
            web, api = free_port(), free_port()
            env = {
                "BASE_IMAGE": compat_base,
                "COMPOSE_PROJECT_NAME": name,
                "WEB_PORT": str(web),
                "API_PORT": str(api),
            }
            ok(run(stackup, up, cwd, **env))
            for port in (web, api):
                poll(f"http://127.0.0.1:{port}/", "role=")
            pages = [get(f"http://127.0.0.1:{port}/") for port in (web, api)]
            answers[tool] = [*pages, ok(run(stackup, probe, cwd, **env))]
    finally:
        env = {"BASE_IMAGE": compat_base, "COMPOSE_PROJECT_NAME": name}
        subprocess.run(
            ["docker-compose", "--profile", "debug", "down", "-v", "--rmi", "local", "-t", "1"],
            cwd=cwd,
            env={**stackup.env(), **env},
            capture_output=True,
            check=False,
            timeout=120,
        )
        run(stackup, stackup_cmd("--profile", "debug", "down", "-v", "-t", "1"), cwd, **env)
    assert answers["stackup"] == answers["docker-compose"]
    assert answers["stackup"][0] == "hello from a Compose file\nrole=web env=demo tz=UTC\n"
    assert answers["stackup"][2] == answers["stackup"][0] + answers["stackup"][1]
