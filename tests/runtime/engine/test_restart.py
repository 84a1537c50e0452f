"""Restart policies and backoff: pure tables, no containers, no clock."""

from __future__ import annotations

import pytest

from stackup.runtime.wire.restart import (
    Backoff,
    RestartMode,
    RestartPolicy,
    should_restart,
    start_on_engine_start,
)


@pytest.mark.parametrize(
    ("text", "mode", "max_retries"),
    [
        ("no", RestartMode.NO, 0),
        ("", RestartMode.NO, 0),
        ("always", RestartMode.ALWAYS, 0),
        ("unless-stopped", RestartMode.UNLESS_STOPPED, 0),
        ("on-failure", RestartMode.ON_FAILURE, 0),
        ("on-failure:3", RestartMode.ON_FAILURE, 3),
        (" on-failure:0 ", RestartMode.ON_FAILURE, 0),
    ],
)
def test_parse(text: str, mode: RestartMode, max_retries: int) -> None:
    assert RestartPolicy.parse(text) == RestartPolicy(mode=mode, max_retries=max_retries)


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:-1", "on-failure:x", "ON-FAILURE"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="use no, always, on-failure"):
        RestartPolicy.parse(text)


@pytest.mark.parametrize("text", ["no", "always", "unless-stopped", "on-failure", "on-failure:2"])
def test_str_round_trips(text: str) -> None:
    assert str(RestartPolicy.parse(text)) == text


P = RestartPolicy.parse


@pytest.mark.parametrize(
    ("policy", "exit_code", "count", "by_user", "expected"),
    [
        (P("no"), 1, 0, False, False),
        (P("always"), 0, 0, False, True),
        (P("always"), 1, 99, False, True),
        (P("always"), 0, 0, True, False),
        (P("unless-stopped"), 0, 5, False, True),
        (P("unless-stopped"), 137, 0, True, False),
        (P("on-failure"), 0, 0, False, False),
        (P("on-failure"), 1, 1000, False, True),  # no maximum
        (P("on-failure:2"), 1, 0, False, True),
        (P("on-failure:2"), 1, 1, False, True),
        (P("on-failure:2"), 1, 2, False, False),
        (P("on-failure:2"), 0, 0, False, False),
        (P("on-failure:2"), 1, 0, True, False),
    ],
)
def test_should_restart(
    policy: RestartPolicy, exit_code: int, count: int, by_user: bool, expected: bool
) -> None:
    assert should_restart(policy, exit_code, count, by_user) is expected


@pytest.mark.parametrize(
    ("policy", "exit_code", "by_user", "expected"),
    [
        (P("no"), 1, False, False),
        (P("always"), 0, True, True),
        (P("unless-stopped"), 0, False, True),
        (P("unless-stopped"), 0, True, False),
        (P("on-failure"), 1, False, True),
        (P("on-failure"), 0, False, False),
    ],
)
def test_start_on_engine_start(policy: RestartPolicy, exit_code: int, by_user: bool, expected: bool) -> None:
    assert start_on_engine_start(policy, exit_code, by_user) is expected


def delays(runs: list[float]) -> list[float]:
    backoff, out = Backoff(), []
    for ran_for in runs:
        backoff = backoff.after_run(ran_for)
        out.append(backoff.delay)
    return out


def test_backoff_doubles_from_100ms() -> None:
    assert delays([0.5] * 5) == [0.1, 0.2, 0.4, 0.8, 1.6]


def test_backoff_is_capped_at_one_minute() -> None:
    assert delays([0] * 12)[9:] == [51.2, 60.0, 60.0]


def test_backoff_resets_after_a_run_of_ten_seconds() -> None:
    assert delays([1, 1, 1, 10, 9.99]) == [0.1, 0.2, 0.4, 0.1, 0.2]
