"""`post_start` / `pre_stop` hooks on Docker: recorded in a label, run by exec.

Docker has no lifecycle hooks, so the runtime runs them: `post_start` after every start,
`pre_stop` before every stop of a running container. The hooks are written into one label at
create time so a later process (`down` in another invocation) still knows them; the runtime keeps
what it read from labels in memory, so a stop after `observe` costs no extra inspect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from stackup.runtime.base import HookSpec
from stackup.runtime.labels import PREFIX

HOOKS_LABEL: Final = f"{PREFIX}.docker.hooks"
"""JSON `{"post_start": [...], "pre_stop": [...]}`, present only on containers that have hooks."""


@dataclass(frozen=True, slots=True)
class Hooks:
    post_start: tuple[HookSpec, ...] = ()
    pre_stop: tuple[HookSpec, ...] = ()


NO_HOOKS: Final = Hooks()


def _dump(hook: HookSpec) -> dict[str, Any]:
    return {
        "command": list(hook.command),
        "user": hook.user,
        "privileged": hook.privileged,
        "working_dir": hook.working_dir,
        "environment": dict(hook.environment),
    }


def _load(item: Mapping[str, Any]) -> HookSpec:
    return HookSpec(
        command=tuple(str(c) for c in item.get("command") or ()),
        user=item.get("user"),
        privileged=bool(item.get("privileged")),
        working_dir=item.get("working_dir"),
        environment={str(k): str(v) for k, v in (item.get("environment") or {}).items()},
    )


def hooks_label(post_start: tuple[HookSpec, ...], pre_stop: tuple[HookSpec, ...]) -> dict[str, str]:
    """The label to add (empty when there are no hooks, so most containers carry nothing)."""
    if not post_start and not pre_stop:
        return {}
    data = {"post_start": [_dump(h) for h in post_start], "pre_stop": [_dump(h) for h in pre_stop]}
    return {HOOKS_LABEL: json.dumps(data, sort_keys=True, separators=(",", ":"))}


def hooks_of(labels: Mapping[str, str]) -> Hooks:
    """The hooks a container's labels record; a corrupt label reads as none."""
    text = labels.get(HOOKS_LABEL)
    if not text:
        return NO_HOOKS
    try:
        data = json.loads(text)
        return Hooks(
            post_start=tuple(_load(h) for h in data.get("post_start") or ()),
            pre_stop=tuple(_load(h) for h in data.get("pre_stop") or ()),
        )
    except (ValueError, AttributeError, TypeError):
        return NO_HOOKS
