"""The plugin as its users meet it: pytest runs (pytester, in subprocesses) with a conftest that
declares a stack, on the real engine; what each run left behind is checked from outside."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from stackup.api import Stack
from tests.testing._helpers import PLUGIN_ARGS, STACK, leftovers

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.engine

CONFTEST = """
from stackup.testing import stack_fixture

web = stack_fixture("compose.yaml", scope="session", project_name="inner")
"""

RECORD = """
from pathlib import Path

def record(web):
    with Path("names").open("a") as out:
        out.write(f"{web.name} {web.url('web', 8000)}\\n")
"""

NAME = re.compile(r"\binner-(?:main|gw\d+)-[0-9a-f]{6}\b")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copy(STACK, pytester.path / "compose.yaml")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(record=RECORD)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*PLUGIN_ARGS, "-p", "no:cacheprovider", *args, timeout=240)


def recorded(pytester: pytest.Pytester) -> list[tuple[str, str]]:
    path = pytester.path / "names"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(line.split()[0], line.split()[1]) for line in lines]


def remove(name: str) -> None:
    """Cleanup for a test that failed before the plugin (or the test) removed the project."""
    with Stack.by_name(name) as stack:
        stack.down(volumes=True)


def remove_all(pytester: pytest.Pytester, output: str = "") -> None:
    """Every project a run recorded or printed: cleanup must not depend on the run going well."""
    for name in {name for name, _ in recorded(pytester)} | set(NAME.findall(output)):
        remove(name)


def test_session_stack_is_shared_removed_and_its_logs_reach_a_failing_report(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_inner="""
import urllib.request
from record import record

def test_serves(web):
    record(web)
    assert urllib.request.urlopen(web.url("web", 8000), timeout=5).read() == b"hello from stackup\\n"

def test_fails(web):
    record(web)
    assert web.exec("web", ["cat", "/www/index.html"]).stdout == b"something else\\n"
""")
    result = run(project)
    names = {name for name, _ in recorded(project)}
    try:
        result.assert_outcomes(passed=1, failed=1)
        assert len(names) == 1, "one session-scoped stack for both tests"
        (name,) = names
        assert NAME.fullmatch(name)
        out = result.stdout.str()
        report = out[out.index("stackup logs: " + name):]
        assert "setup | prepared" in report and "web | web starting" in report
        assert out.count("stackup logs: ") == 1, "only the failing test gets the logs"
        assert leftovers(name) == []
    finally:
        remove_all(project, result.stdout.str())


def test_keep_leaves_the_stack_and_says_how_to_remove_it(project: pytest.Pytester) -> None:
    project.makepyfile(test_inner="""
from record import record

def test_up(web):
    record(web)
""")
    result = run(project, "--stackup-keep")
    kept = recorded(project)
    try:
        result.assert_outcomes(passed=1)
        ((name, url),) = kept
        out = result.stdout.str()
        assert "stackup: stacks kept (--stackup-keep)" in out
        host_port = url.removeprefix("http://").rstrip("/")
        assert f"web 8000/tcp -> {host_port}" in out
        root = os.environ["STACKUP_ROOT"]
        assert f"remove:  STACKUP_ROOT={root} stackup -p {name} down -v" in out
        assert urllib.request.urlopen(url, timeout=5).read() == b"hello from stackup\n"
        assert leftovers(name) != []
        # the command the summary printed, run as printed (the CLI from this checkout)
        subprocess.run([sys.executable, "-m", "stackup", "-p", name, "down", "-v"], check=True,
                       capture_output=True)  # fmt: skip
        assert leftovers(name) == []
    finally:
        remove_all(project, result.stdout.str())


def test_xdist_workers_get_projects_and_ports_of_their_own(project: pytest.Pytester) -> None:
    """Two workers, each with its session stack; each test waits until both stacks are up, so
    they provably coexist, then reaches its own."""
    project.makepyfile(test_inner="""
import time
import urllib.request
from pathlib import Path
from record import record

def both_up(web):
    record(web)
    deadline = time.monotonic() + 120
    while len(Path("names").read_text().splitlines()) < 2:
        assert time.monotonic() < deadline, "the other worker's stack never came up"
        time.sleep(0.1)
    assert urllib.request.urlopen(web.url("web", 8000), timeout=5).read() == b"hello from stackup\\n"

def test_one(web):
    both_up(web)

def test_two(web):
    both_up(web)
""")
    result = run(project, "-n", "2")
    seen = recorded(project)
    try:
        result.assert_outcomes(passed=2)
        names = sorted(name for name, _ in seen)
        assert len(set(names)) == 2
        assert {name.split("-")[1] for name in names} == {"gw0", "gw1"}
        assert len({url for _, url in seen}) == 2, "each project has its own host port"
        for name in names:
            assert leftovers(name) == []
    finally:
        remove_all(project, result.stdout.str())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_removes_its_stacks(project: pytest.Pytester, signum: signal.Signals) -> None:
    project.makepyfile(test_inner="""
import time
from record import record

def test_waits_to_be_interrupted(web):
    record(web)
    time.sleep(240)
""")
    log = project.path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *PLUGIN_ARGS, "-p", "no:cacheprovider", "test_inner.py"],
            cwd=project.path, stdout=out, stderr=subprocess.STDOUT,
            # a shell without job control starts background jobs with SIGINT ignored: undo that
            preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)],  # noqa: PLW1509
        )
    seen: list[tuple[str, str]] = []
    try:
        deadline = time.monotonic() + 180
        while not seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = recorded(project)
        assert seen, f"the stack never came up:\n{log.read_text()}"
        ((name, _),) = seen
        assert leftovers(name) != []
        proc.send_signal(signum)
        code = proc.wait(timeout=120)
        assert code == pytest.ExitCode.INTERRUPTED, log.read_text()
        assert leftovers(name) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_all(project, log.read_text())


def test_a_stack_that_cannot_come_up_fails_set_up_with_the_culprit_and_is_removed(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "compose.yaml").write_text("""
services:
  db:
    image: stackup-test/busybox:latest
    init: true
    command: ["sh", "-c", "echo db says why; exec sleep 3600"]
    healthcheck: {test: ["CMD", "false"], interval: 1s, retries: 1}
  app:
    image: stackup-test/busybox:latest
    init: true
    command: ["sleep", "3600"]
    depends_on: {db: {condition: service_healthy}}
""")
    pytester.makeconftest(CONFTEST.replace("inner", "broken"))
    pytester.makepyfile(test_inner="def test_never_runs(web):\n    raise AssertionError('ran')\n")
    result = run(pytester)
    out = result.stdout.str()
    names = set(re.findall(r"\bbroken-main-[0-9a-f]{6}\b", out))
    try:
        result.assert_outcomes(errors=1)
        assert "unhealthy" in out and "db | db says why" in out
        assert len(names) == 1
        assert leftovers(next(iter(names))) == []
    finally:
        for name in names:
            remove(name)


def test_the_usage_example_of_the_docs_runs(pytester: pytest.Pytester) -> None:
    """docs/testing.md opens with a conftest and a test in one block: run them as written."""
    text = (Path(__file__).parents[2] / "docs" / "testing.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    conftest, test = block.split("# test_web.py\n")
    shutil.copy(STACK, pytester.path / "compose.yaml")
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_web=test)
    result = run(pytester)
    result.assert_outcomes(passed=1)
