"""Restart policies and Docker's restart backoff, as pure values and functions.

Podman restarts at once, with no delay (runtime-notes §1.4), so a container that crashes on
start spins a CPU; Docker waits 100 ms, doubling up to one minute, and forgets the backoff once
the container has run for 10 s. stackup follows Docker (moby `restartmanager.go`).

The policy text is what Compose's `restart:` and Docker's `--restart` accept. The engine parses
it itself rather than importing the Compose model, because it arrives as text over the API and
`on-failure:N` means Docker's `MaximumRetryCount` here (0 or absent = no limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

INITIAL_DELAY_S = 0.1
MAX_DELAY_S = 60.0
RESET_AFTER_S = 10.0
"""A run at least this long counts as "it worked for a while": the next crash starts at 100 ms."""

_POLICY = re.compile(r"(no|always|unless-stopped|on-failure)(?::(\d+))?")


class RestartMode(StrEnum):
    NO = "no"
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    UNLESS_STOPPED = "unless-stopped"


class RestartPolicy(BaseModel):
    """`no`, `always`, `on-failure[:N]` or `unless-stopped`; `max_retries` 0 means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: RestartMode = RestartMode.NO
    max_retries: int = Field(default=0, ge=0)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse the policy text; an empty string is `no`. Raises ValueError naming the forms."""
        stripped = text.strip() or RestartMode.NO.value
        match = _POLICY.fullmatch(stripped)
        if match is None or (match.group(2) is not None and match.group(1) != RestartMode.ON_FAILURE):
            raise ValueError(
                f"invalid restart policy {text!r}: use no, always, on-failure[:N] or unless-stopped"
            )
        return cls(mode=RestartMode(match.group(1)), max_retries=int(match.group(2) or 0))

    def __str__(self) -> str:
        if self.mode is RestartMode.ON_FAILURE and self.max_retries:
            return f"{self.mode}:{self.max_retries}"
        return self.mode.value


def should_restart(policy: RestartPolicy, exit_code: int, restart_count: int, stopped_by_user: bool) -> bool:
    """Whether a container that just exited is started again (after the backoff delay).

    A stop the user asked for is never undone, whatever the policy (Docker cancels the restart
    manager on stop); `always` and `unless-stopped` differ only when the engine itself starts,
    see `start_on_engine_start`. `restart_count` is the number of automatic restarts so far.
    """
    if stopped_by_user:
        return False
    match policy.mode:
        case RestartMode.ALWAYS | RestartMode.UNLESS_STOPPED:
            return True
        case RestartMode.ON_FAILURE:
            within = policy.max_retries == 0 or restart_count < policy.max_retries
            return exit_code != 0 and within
        case _:
            return False


def start_on_engine_start(policy: RestartPolicy, exit_code: int, stopped_by_user: bool) -> bool:
    """Whether an exited container is started when the engine (re)starts, as Docker's
    `Container.ShouldRestart`: `always` even after a user's stop, `unless-stopped` only without one."""
    match policy.mode:
        case RestartMode.ALWAYS:
            return True
        case RestartMode.UNLESS_STOPPED:
            return not stopped_by_user
        case RestartMode.ON_FAILURE:
            return exit_code != 0 and not stopped_by_user
        case _:
            return False


@dataclass(frozen=True, slots=True)
class Backoff:
    """The delay before the next automatic restart; `delay` 0 means no restart has happened yet."""

    delay: float = 0.0

    def after_run(self, ran_for: float) -> Backoff:
        """The backoff for a restart of a container that has just run for `ran_for` seconds."""
        if self.delay == 0.0 or ran_for >= RESET_AFTER_S:
            return Backoff(INITIAL_DELAY_S)
        return Backoff(min(self.delay * 2, MAX_DELAY_S))
