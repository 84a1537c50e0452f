"""The raw tree the loader passes hand to each other: plain dicts, lists and scalars.

YAML tags `!reset` and `!override` survive parsing as `Tagged` so the merge pass can honour them;
every other pass treats a `Tagged` as a transparent box around its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Tag(StrEnum):
    RESET = "reset"
    OVERRIDE = "override"


@dataclass(frozen=True, slots=True)
class Tagged:
    tag: Tag
    value: Any


Tree = dict[str, Any]
