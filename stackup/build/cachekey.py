"""Cache keys of build steps: sha256 over everything a layer's content can depend on.

A step's key covers the parent layer's key, the instruction after substitution (never its line or
the way it was spelt across lines), the build args it can see and depends on, and what it reads:

- RUN: the environment, user, working directory and shell it runs with, its mounts (for a secret
  mount: id, target, required, mode, uid/gid, never the content), the keys of the stages its mounts
  read (or, for a bind of the build context, the content digest of what it binds), its network
  mode and heredoc bodies. Proxy build args are left out (as Docker does).
- COPY/ADD: the content digest of the context files it reads (`BuildContext.digest`), or the key
  of the stage (or the id of the image) named by `--from`, plus the working directory.
- WORKDIR: the resolved path and the user who will own it.

Metadata instructions (ENV, LABEL, CMD, ...) make no layer: ENV reaches later keys through the
RUN environment, LABEL or CMD changes leave every layer cached. `CacheKey.describe()` is the
printable form (debug logs, `--explain`): build-arg values appear only as digests, secrets never.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from stackup.build.dockerfile.instructions import CopyBase, Instruction, MountType, Run, Workdir
from stackup.build.imageconfig import DEFAULT_SHELL

if TYPE_CHECKING:
    from stackup.build.context import BuildContext
    from stackup.build.graph import SourceRef, Stage, Step

KEY_VERSION = "stackup-build-v1"


@dataclass(frozen=True)
class KeyInputs:
    """What a key needs from outside the Dockerfile: the context, the final key of each stage
    built so far, the content id of each external image (name -> id), and the named local
    contexts (`additional_contexts`) whose content a step reads."""

    context: BuildContext | None = None
    stage_keys: Mapping[int, str] = field(default_factory=dict)
    image_ids: Mapping[str, str] = field(default_factory=dict)
    contexts: Mapping[str, BuildContext] = field(default_factory=dict)

    def named(self, name: str) -> BuildContext:
        found = self.contexts.get(name)
        if found is None:
            raise ValueError(f'the named context "{name}" is not a local directory of this build')
        return found


@dataclass(frozen=True)
class CacheKey:
    digest: str
    components: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return self.digest

    def describe(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.components)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.name != "node"}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _ref_key(ref: SourceRef, inputs: KeyInputs, sources: tuple[str, ...] = (".",),
             excludes: tuple[str, ...] = ()) -> str:
    """A `--from` source's identity; for a named local context, the content of what is read."""
    if ref.context:
        return f"context:{ref.context}:{inputs.named(ref.context).digest(sources, excludes)}"
    if ref.stage is not None:
        key = inputs.stage_keys.get(ref.stage)
        if key is None:
            raise KeyError(f"stage {ref.stage} has no key yet: build the stages in BuildGraph.levels() order")
        return f"stage:{key}"
    return f"image:{inputs.image_ids.get(ref.image, ref.image)}"


def base_key(stage: Stage, inputs: KeyInputs) -> str:
    """The key a stage's first layer builds on: its base stage's key or its base image's id."""
    if stage.base_stage is not None:
        return inputs.stage_keys[stage.base_stage]
    if stage.base_context:
        content = inputs.named(stage.base_context).digest(["."])
        return _sha(f"{KEY_VERSION}\ncontext\n{content}\n{stage.platform}")
    if stage.base.lower() == "scratch":
        return _sha(f"{KEY_VERSION}\nscratch\n{stage.platform}")
    return _sha(f"{KEY_VERSION}\nimage\n{inputs.image_ids.get(stage.base, stage.base)}\n{stage.platform}")


def step_key(step: Step, parent_key: str, inputs: KeyInputs) -> CacheKey:
    instr: Instruction = step.instruction
    parts: list[tuple[str, str]] = [("version", KEY_VERSION), ("parent", parent_key),
                                    ("instruction", f"{instr.name} {_json(instr)}")]
    printable = list(parts)
    args = sorted((k, v) for k, v in step.args if k in step.used_args)
    if args:
        parts.append(("args", _json(args)))
        printable.append(("args", " ".join(f"{k}=sha256:{_sha(v)[:12]}" for k, v in args)))
    extra: list[tuple[str, str]] = []
    config = step.config
    if isinstance(instr, Run):
        extra.append(("env", _json(sorted(config.env))))
        extra.append(("user", config.user))
        extra.append(("workdir", config.workdir or "/"))
        if instr.prepend_shell:
            extra.append(("shell", _json(config.shell or DEFAULT_SHELL)))
        for mount, ref in zip(step.mounts, step.mount_sources, strict=True):
            desc = _json(mount) if mount.type is not MountType.SECRET else _json(
                {"type": "secret", "id": mount.secret_id, "target": mount.target, "required": mount.required,
                 "mode": mount.mode, "uid": mount.uid, "gid": mount.gid, "env": mount.env})
            if ref is not None:
                desc += f" from {_ref_key(ref, inputs, (mount.source or '.',))}"
            elif mount.type is MountType.BIND:  # a bind of the build context: its content counts
                if inputs.context is None:
                    raise ValueError(f"RUN at line {instr.line} binds the build context: pass one")
                desc += f" content {inputs.context.digest([mount.source or '.'])}"
            extra.append(("mount", desc))
    elif isinstance(instr, CopyBase):
        extra.append(("workdir", config.workdir or "/"))
        if step.copy_from is not None:
            extra.append(("from", _ref_key(step.copy_from, inputs, instr.sources, instr.excludes)))
        elif instr.sources:
            if inputs.context is None:
                raise ValueError(f"{instr.name} at line {instr.line} reads the build context: pass one")
            extra.append(("content", inputs.context.digest(instr.sources, instr.excludes)))
    elif isinstance(instr, Workdir):
        extra.append(("user", config.user))
        extra.append(("base", config.workdir or "/"))
    parts.extend(extra)
    printable.extend(extra)
    digest = "sha256:" + _sha("\n".join(f"{k}\t{v}" for k, v in parts))
    return CacheKey(digest, tuple(printable))


def stage_chain(stage: Stage, inputs: KeyInputs) -> list[tuple[Step, CacheKey | None]]:
    """Every step of a stage with its key (None for metadata steps), each layer keyed on the one
    before it. The last key (or `base_key`) is the stage's key for `KeyInputs.stage_keys`."""
    parent = base_key(stage, inputs)
    out: list[tuple[Step, CacheKey | None]] = []
    for step in stage.steps:
        if not step.makes_layer:
            out.append((step, None))
            continue
        key = step_key(step, parent, inputs)
        parent = key.digest
        out.append((step, key))
    return out


def stage_key(stage: Stage, inputs: KeyInputs) -> str:
    keys = [k for _, k in stage_chain(stage, inputs) if k is not None]
    return keys[-1].digest if keys else base_key(stage, inputs)
