"""The build graph: stages and their steps, substituted and resolved, ready for an executor.

`plan_build(dockerfile, ...)` does everything that needs no engine: global ARG scope and FROM
substitution, per-stage ARG/ENV scoping and substitution (see `expand`), the image config each
stage ends with, which stage or image each `FROM`, `COPY --from` and `RUN --mount from=` reads,
the stages `--target` needs (transitively) and the order they can build in (`levels()`: stages in
one level are independent and may build in parallel).

What the executor does with it, per needed stage in `levels()` order: start from the base (image or
the stage's result), then per step: metadata steps only change the config (already folded into
`Step.config`); RUN/COPY/ADD/WORKDIR make a layer keyed by `cachekey.step_key(step, parent_key, inputs)`
(`stackup.build.cachekey`); on a key hit, reuse the layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from stackup.build.dockerfile.convert import Dockerfile, parse_instructions
from stackup.build.dockerfile.instructions import (
    Arg,
    Cmd,
    Copy,
    CopyBase,
    Env,
    From,
    Instruction,
    Mount,
    Run,
    Workdir,
)
from stackup.build.dockerfile.mounts import MountError, parse_mount
from stackup.build.dockerfile.parser import parse_text
from stackup.build.dockerfile.shell import ShellError, ShellLexer
from stackup.build.expand import Expander, expand_instruction
from stackup.build.imageconfig import ImageConfig, apply
from stackup.build.platform import PROXY_ARGS, Platform, default_args
from stackup.errors import DockerfileError


class StepKind(StrEnum):
    RUN = "run"
    COPY = "copy"
    ADD = "add"
    WORKDIR = "workdir"
    METADATA = "metadata"


@dataclass(frozen=True)
class SourceRef:
    """Where `COPY --from` or a `--mount from=` reads: an earlier/other stage, an image, or a
    named local context (`additional_contexts`, by its name)."""

    stage: int | None = None
    image: str = ""
    context: str = ""


IMAGE_CONTEXT = "docker-image://"
"""An `additional_contexts` value naming an image in the store instead of a directory."""


@dataclass(frozen=True)
class Step:
    """One instruction of a stage, substituted. `config` is the stage's config *before* this step
    (what a RUN runs with: env, user, workdir, shell); `args` the build args in scope."""

    stage: int
    index: int
    instruction: Instruction
    kind: StepKind
    config: ImageConfig
    args: tuple[tuple[str, str], ...] = ()
    used_args: frozenset[str] = frozenset()
    mounts: tuple[Mount, ...] = ()
    mount_sources: tuple[SourceRef | None, ...] = ()
    copy_from: SourceRef | None = None
    proxy_env: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def makes_layer(self) -> bool:
        return self.kind is not StepKind.METADATA

    def run_env(self) -> dict[str, str]:
        """The environment a RUN step's process gets: image env, then args in scope, then proxies
        given as build args (never in the image or the cache key)."""
        env = dict(self.config.env)
        env.update(self.args)
        for key, value in self.proxy_env:
            env.setdefault(key, value)
        return env


@dataclass(frozen=True)
class Stage:
    index: int
    name: str
    from_: From
    base: str
    base_stage: int | None
    platform: str
    steps: tuple[Step, ...]
    config: ImageConfig
    deps: frozenset[int]
    images: frozenset[str]
    base_context: str = ""
    """`FROM name` where `name` is a local named context: the stage starts from its files."""

    @property
    def label(self) -> str:
        return self.name or str(self.index)


@dataclass(frozen=True)
class BuildGraph:
    path: str
    stages: tuple[Stage, ...]
    target: int
    global_args: tuple[tuple[str, str], ...]

    def needed(self) -> tuple[int, ...]:
        """The stages the target needs, itself included, in index order."""
        seen: set[int] = set()
        todo = [self.target]
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(self.stages[i].deps)
        return tuple(sorted(seen))

    def levels(self) -> list[tuple[int, ...]]:
        """Needed stages in dependency order, grouped: a stage's dependencies are in earlier
        groups, so the stages of one group can build in parallel."""
        remaining = set(self.needed())
        done: set[int] = set()
        out: list[tuple[int, ...]] = []
        while remaining:
            ready = tuple(sorted(i for i in remaining if self.stages[i].deps <= done))
            if not ready:
                names = ", ".join(self.stages[i].label for i in sorted(remaining))
                raise DockerfileError(f"circular dependency between stages: {names}", path=self.path)
            out.append(ready)
            done.update(ready)
            remaining.difference_update(ready)
        return out

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name.lower() or str(stage.index) == name:
                return stage
        raise DockerfileError(f"target stage {name!r} could not be found", path=self.path)


BaseConfig = Callable[[str], ImageConfig | None]


def plan_build(
    dockerfile: Dockerfile,
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    build_platform: Platform | None = None,
    target_platform: Platform | None = None,
    base_config: BaseConfig | None = None,
    contexts: Mapping[str, str] | None = None,
) -> BuildGraph:
    """Resolve a typed Dockerfile into a `BuildGraph`. `base_config(image)` gives a base image's
    config (its env matters for substitution), None if unknown. `contexts` are the named
    contexts (name -> absolute directory or `docker-image://REF`): as in BuildKit, `FROM name`,
    `COPY --from=name` and `--mount from=name` read them before a stage or an image of that
    name. Raises `DockerfileError`."""
    if not dockerfile.stages:
        raise DockerfileError("dockerfile contains no stages to build", path=dockerfile.path)
    build_args = dict(build_args or {})
    names = [f.stage_name for f, _ in dockerfile.stages]
    _check_names(dockerfile, names)
    target_index = len(names) - 1
    if target:
        if target.lower() not in names:
            raise DockerfileError(f"target stage {target!r} could not be found", path=dockerfile.path)
        target_index = names.index(target.lower())
    build_platform = build_platform or Platform.host()
    scope = default_args(build_platform, target_platform or build_platform, names[target_index])
    scope.update({k: v for k, v in build_args.items() if k in scope})
    lexer = ShellLexer(dockerfile.escape)
    for arg in dockerfile.meta_args:
        for d in arg.args:
            if d.key in build_args:
                scope[d.key] = build_args[d.key]
            elif d.default is not None:
                scope[d.key] = Expander(lexer, scope, dockerfile.path, arg).word(d.default)
    planner = _StagePlanner(dockerfile, names, scope, build_args, lexer, base_config or (lambda _r: None),
                            dict(contexts or {}))
    stages: list[Stage] = []
    for index, (from_, instructions) in enumerate(dockerfile.stages):
        stages.append(planner.plan(index, from_, instructions, stages))
    return BuildGraph(dockerfile.path, tuple(stages), target_index, tuple(sorted(scope.items())))


def _check_names(dockerfile: Dockerfile, names: list[str]) -> None:
    seen: set[str] = set()
    for (from_, _), name in zip(dockerfile.stages, names, strict=True):
        if name and name in seen:
            raise DockerfileError(f"duplicate stage name {name!r}", path=dockerfile.path, line=from_.line,
                                  column=from_.column)
        seen.add(name)


@dataclass
class _StagePlanner:
    dockerfile: Dockerfile
    names: list[str]
    scope: dict[str, str]
    build_args: dict[str, str]
    lexer: ShellLexer
    base_config: BaseConfig
    contexts: dict[str, str]

    def fail(self, instr: Instruction, message: str) -> DockerfileError:
        return DockerfileError(message, path=self.dockerfile.path, line=instr.line, column=instr.column)

    def named(self, instr: Instruction, ref: str) -> SourceRef | None:
        """The named context `ref` as a source; None when no context has that name."""
        value = self.contexts.get(ref)
        if value is None:
            return None
        if value.startswith(IMAGE_CONTEXT):
            return SourceRef(image=value.removeprefix(IMAGE_CONTEXT))
        if value.startswith("/"):
            return SourceRef(context=ref)
        raise self.fail(instr, f'additional context "{ref}" is "{value}": only a local directory or '
                               f"{IMAGE_CONTEXT}REF can be read here (no registry, git or URL contexts)")

    def resolve(self, instr: Instruction, ref: str, index: int, what: str) -> SourceRef:
        named = self.named(instr, ref)
        if named is not None:
            return named
        if ref.isdigit():
            n = int(ref)
            if n >= index:
                raise self.fail(instr, f"{what}={ref} refers to a stage that is not before this one")
            return SourceRef(stage=n)
        if ref.lower() in self.names:
            n = self.names.index(ref.lower())
            if n == index:
                raise self.fail(instr, f"{what}={ref} refers to its own stage")
            return SourceRef(stage=n)
        return SourceRef(image=ref)

    def plan(
        self, index: int, from_: From, instructions: tuple[Instruction, ...], done: list[Stage]
    ) -> Stage:
        ex = Expander(self.lexer, self.scope, self.dockerfile.path, from_)
        base = ex.word(from_.base)
        if not base:
            raise self.fail(from_, f"base name ({from_.base}) should not be blank")
        platform = ex.word(from_.platform) if from_.platform else ""
        from_ = replace(from_, base=base, platform=platform)
        named = self.named(from_, base)
        base_stage = None
        if named is None:
            base_stage = next((s.index for s in done if s.name and s.name == base.lower()), None)
        images: set[str] = set()
        if named is not None and named.image:
            base = named.image
        if named is not None and named.context:
            config = ImageConfig()
        elif base_stage is not None:
            config = done[base_stage].config
        elif base.lower() == "scratch":
            config = ImageConfig()
        else:
            config = self.base_config(base) or ImageConfig()
            images.add(base)
        if config.onbuild:  # the base's (image or stage) triggers run first, and are not inherited
            instructions = (*self._triggers(from_, base, config.onbuild), *instructions)
            config = replace(config, onbuild=())
        visible = dict(config.env)
        args: dict[str, str] = {}
        steps: list[Step] = []
        deps: set[int] = {base_stage} if base_stage is not None else set()
        cmd_set = False
        proxies = tuple((k, v) for k, v in sorted(self.build_args.items()) if k in PROXY_ARGS)
        for i, instr in enumerate(instructions):
            before = config
            if isinstance(instr, Arg):
                used = self._args(instr, visible, args)
                steps.append(Step(index, i, instr, StepKind.METADATA, before, tuple(args.items()), used))
                continue
            sub, used = expand_instruction(instr, visible, self.lexer, self.dockerfile.path)
            mounts: tuple[Mount, ...] = ()
            mount_sources: tuple[SourceRef | None, ...] = ()
            copy_from: SourceRef | None = None
            if isinstance(sub, Run):
                mounts, used = self._mounts(sub, visible, used)
                mount_sources = tuple(self.resolve(sub, m.from_, index, "--mount from") if m.from_ else None
                                      for m in mounts)
                used = used | frozenset(args)
            if isinstance(sub, Copy) and sub.from_:
                copy_from = self.resolve(sub, sub.from_, index, "--from")
            for ref in (copy_from, *mount_sources):
                if ref is not None and ref.stage is not None:
                    deps.add(ref.stage)
                elif ref is not None and ref.image:
                    images.add(ref.image)
            if isinstance(sub, Env):
                visible.update((p.key, p.value) for p in sub.pairs)
            cmd_set = cmd_set or isinstance(sub, Cmd)
            config = apply(config, sub, cmd_set=cmd_set)
            in_scope = tuple((k, v) for k, v in args.items() if k in used)
            steps.append(Step(index, i, sub, _kind(sub), before, in_scope, used & frozenset(args), mounts,
                              mount_sources, copy_from, proxies if isinstance(sub, Run) else ()))
        return Stage(index, self.names[index], from_, base, base_stage, platform, tuple(steps), config,
                     frozenset(deps), frozenset(images), named.context if named else "")

    def _triggers(self, from_: From, base: str, expressions: tuple[str, ...]) -> tuple[Instruction, ...]:
        """A base image's ONBUILD triggers as instructions, as if written right after the FROM
        (Docker's rule), located at that FROM line."""
        path = f"{self.dockerfile.path} (ONBUILD of {base})"
        parsed = parse_instructions(parse_text("FROM scratch\n" + "\n".join(expressions) + "\n", path))
        out: list[Instruction] = []
        for instr in parsed.stages[0][1]:
            node = replace(instr.node, line=from_.line, end_line=from_.line, column=from_.column)
            out.append(replace(instr, node=node))
        return tuple(out)

    def _args(self, instr: Arg, visible: dict[str, str], args: dict[str, str]) -> frozenset[str]:
        used: set[str] = set()
        for d in instr.args:
            value: str | None
            if d.key in self.build_args:
                value = self.build_args[d.key]
            elif d.default is not None:
                ex = Expander(self.lexer, visible, self.dockerfile.path, instr)
                value = ex.word(d.default)
                used |= ex.used
            else:
                value = self.scope.get(d.key)
            if value is not None:
                visible[d.key] = value
                args[d.key] = value
        return frozenset(used)

    def _mounts(self, run: Run, visible: dict[str, str], used: frozenset[str]) -> tuple[tuple[Mount, ...],
                                                                                         frozenset[str]]:
        ex = Expander(self.lexer, visible, self.dockerfile.path, run)
        out = []
        for spec in run.mount_specs:
            try:
                out.append(parse_mount(spec, ex.word))
            except (MountError, ShellError) as exc:
                raise self.fail(run, str(exc)) from None
        return tuple(out), used | frozenset(ex.used)


def _kind(instr: Instruction) -> StepKind:
    if isinstance(instr, Run):
        return StepKind.RUN
    if isinstance(instr, CopyBase):
        return StepKind.ADD if not isinstance(instr, Copy) else StepKind.COPY
    if isinstance(instr, Workdir):
        return StepKind.WORKDIR
    return StepKind.METADATA
