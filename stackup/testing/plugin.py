"""The pytest plugin (entry point `pytest11: stackup`): options, the `stackup` marker and its
fixture, logs in failing tests' reports, SIGTERM as an interruption, and what `--stackup-keep`
kept, gathered from every xdist worker into the run's summary."""

from __future__ import annotations

import signal
from collections.abc import Generator, Iterator

import pytest

from stackup.testing import signals
from stackup.testing.environment import StackEnvironment
from stackup.testing.fixture import DEFAULT_LOG_LINES, marker_spec, provide, state_of

_SIGTERM = pytest.StashKey[signal.Handlers | None]()
_KEPT_KEY = "stackup_kept"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stackup", "stackup stacks for tests")
    group.addoption(
        "--stackup-keep", action="store_true", default=False,
        help="leave the stacks up after the run (the summary says how to reach and remove them)",
    )
    group.addoption(
        "--stackup-log-lines", type=int, default=DEFAULT_LOG_LINES, metavar="N",
        help=f"log lines per container in a failing test's report (default {DEFAULT_LOG_LINES})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "stackup(files='compose.yaml', services=(), profiles=(), env=None, project_name=None, "
        "wait_timeout=120, runtime=None): the stack the `stackup_stack` fixture brings up for this test",
    )
    state = state_of(config)
    state.keep = bool(config.getoption("stackup_keep", False))
    state.log_lines = int(config.getoption("stackup_log_lines", DEFAULT_LOG_LINES))
    config.stash[_SIGTERM] = signals.install_sigterm()


def pytest_unconfigure(config: pytest.Config) -> None:
    signals.restore_sigterm(config.stash.get(_SIGTERM, None))


@pytest.fixture
def stackup_stack(request: pytest.FixtureRequest) -> Iterator[StackEnvironment]:
    """The stack named by the test's `@pytest.mark.stackup(...)`, up for this test only."""
    marker = request.node.get_closest_marker("stackup")
    if marker is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: stackup_stack needs @pytest.mark.stackup('compose.yaml', ...)"
        )
    yield from provide(request.config, marker_spec(marker, request.path.parent))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test's report gets a section per stack up at the time: each container's log
    tail, what one needs to see when a test against a service fails."""
    report = yield
    if report.failed:
        state = state_of(item.config)
        for env in list(state.live.values()):
            report.sections.append((f"stackup logs: {env.name}", env.log_report(state.log_lines)))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker, hand what was kept to the controller, which prints the summary."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output[_KEPT_KEY] = list(state_of(session.config).kept)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist (controller): collect a finished worker's kept stacks."""
    output = getattr(node, "workeroutput", None) or {}
    config = getattr(node, "config", None)
    if isinstance(config, pytest.Config):
        state_of(config).kept += list(output.get(_KEPT_KEY, ()))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    kept = state_of(terminalreporter.config).kept
    if kept:
        terminalreporter.section("stackup: stacks kept (--stackup-keep)")
        for line in kept:
            terminalreporter.write_line(line)
