"""Enums of the stack model that code outside the loader needs without the pydantic models.

The planner's execution side (conditions, `down`) compares against these; importing them from
here keeps commands that never load a stack (`down`, `ps`, `logs`) from paying for the models.
"""

from __future__ import annotations

from enum import StrEnum


class DependsCondition(StrEnum):
    """What a dependent waits for before it starts."""

    STARTED = "service_started"
    HEALTHY = "service_healthy"
    COMPLETED_SUCCESSFULLY = "service_completed_successfully"
