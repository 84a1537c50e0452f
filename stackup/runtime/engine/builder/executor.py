"""Run a `BuildRequest` on the engine: plan (stackup.build), then per stage, per step, a cached
layer or a fresh one, and finally the image in the store with its tags.

Stages run as `BuildGraph.levels()` groups them: the stages of one group in parallel threads,
and only the stages the target needs. Each layer step is looked up by its cache key first
(`cachekey.stage_chain`: parent, instruction, args in scope, content read); a hit costs one small
JSON read and no container, so a rebuild with nothing changed does no work beyond hashing the
context files (unchanged files are not even read again: the `StatCache` is kept under the
builder's directory). A miss runs the step in a `Workspace` and adopts its upper dir as the layer.

The image's `created` time is the newest of its layers' (from the cache), so a rebuild that hits
everything produces the same config, hence the same image id, and the planner recreates nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stackup.build.cachekey import CacheKey, KeyInputs, base_key, step_key
from stackup.build.context import BuildContext, StatCache
from stackup.build.dockerfile import parse_instructions, parse_text
from stackup.build.dockerfile.instructions import CopyBase, MountType, Run
from stackup.build.graph import BuildGraph, SourceRef, Stage, Step, StepKind, plan_build
from stackup.build.ignore import IgnoreMatcher
from stackup.errors import DockerfileError, NotFound, RuntimeFailure
from stackup.runtime.engine.builder import imageconf, namedctx, snapshot
from stackup.runtime.engine.builder import mounts as run_mounts
from stackup.runtime.engine.builder.cache import BuildCache
from stackup.runtime.engine.builder.copystep import (
    ContextSource,
    CopyError,
    RootfsSource,
    copy_step,
    make_workdir,
)
from stackup.runtime.engine.builder.failures import BuildError, NotCached, missing_base
from stackup.runtime.engine.builder.mounts import Workspace, builder_dir
from stackup.runtime.engine.builder.runstep import RunOptions, StepFailed, run_step
from stackup.runtime.engine.images.layers import chain_ids
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.build import BuildEvent, BuildEventKind, BuildRequest
from stackup.runtime.wire.images import Image, LayerRecord
from stackup.runtime.wire.paths import EnginePaths

Emit = Callable[[BuildEvent], None]


@dataclass
class _Result:
    """A stage's filesystem (DiffID chain and layers) and when its newest layer was made."""

    diff_ids: list[str]
    layers: list[LayerRecord]
    created: str
    history: list[dict[str, object]] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Build:
    def __init__(self, paths: EnginePaths, store: ImageStore, request: BuildRequest, emit: Emit) -> None:
        self.paths, self.store, self.request, self.emit = paths, store, request, emit
        self.cache = BuildCache(store)
        self.results: dict[int, _Result] = {}
        self.stage_keys: dict[int, str] = {}
        self.lock = threading.Lock()
        context = Path(request.context)
        if not context.is_absolute() or not context.is_dir():
            raise RuntimeFailure(f"build context {request.context} is not an absolute path to a directory")
        self.dockerfile_path = (
            context / request.dockerfile
            if not os.path.isabs(request.dockerfile)
            else Path(request.dockerfile)
        )
        self.display = request.dockerfile if request.dockerfile_inline is None else "Dockerfile (inline)"
        self.statcache_file = builder_dir(paths) / "statcache.json"
        ignore = IgnoreMatcher.for_context(context, self.dockerfile_path)
        self.context = BuildContext(context, ignore, StatCache.load(self.statcache_file))
        self.named = namedctx.local_contexts(request.additional_contexts, self.context.stat_cache)
        self.image_ids: dict[str, str] = {}

    # -- planning -------------------------------------------------------------------------------

    def _base_image(self, ref: str) -> Image:
        """A base image, its layers unpacked (a pulled one may not be yet: `images/unpacking.py`)."""
        try:
            image = self.store.get(ref)
            self.store.layer_dirs(image)
            return image
        except NotFound:
            raise missing_base(ref) from None

    def plan(self) -> BuildGraph:
        if self.request.dockerfile_inline is not None:
            text = self.request.dockerfile_inline
        else:
            try:
                text = self.dockerfile_path.read_text()
            except OSError as exc:
                raise DockerfileError(
                    f"cannot read the Dockerfile: {exc.strerror}", path=str(self.dockerfile_path)
                ) from None
        parsed = parse_instructions(parse_text(text, self.display))

        def base_config(ref: str) -> imageconf.BuildConfig | None:
            try:
                image = self.store.get(ref)
            except NotFound:
                return None
            raw = json.loads(self.store.blob_path(image.id).read_bytes())
            return imageconf.from_wire(image.config, raw.get("config"))

        graph = plan_build(
            parsed,
            build_args=self.request.args,
            target=self.request.target,
            base_config=base_config,
            contexts=self.request.additional_contexts,
        )
        for index in graph.needed():
            for ref in sorted(graph.stages[index].images):
                self.image_ids[ref] = self._base_image(ref).id
        return graph

    # -- running --------------------------------------------------------------------------------

    def run(self) -> Image:
        graph = self.plan()
        with self.store.building():
            for level in graph.levels():
                if len(level) == 1:
                    self._stage(graph, graph.stages[level[0]])
                    continue
                with ThreadPoolExecutor(max_workers=len(level)) as pool:
                    for future in [pool.submit(self._stage, graph, graph.stages[i]) for i in level]:
                        future.result()
            image = self._commit(graph)
        with contextlib.suppress(OSError):
            self.context.stat_cache.save(self.statcache_file)
        self.cache.enforce_limit()
        return image

    def _start(self, stage: Stage) -> _Result:
        if stage.base_stage is not None:
            base = self.results[stage.base_stage]
            return _Result(list(base.diff_ids), list(base.layers), base.created, list(base.history))
        if stage.base.lower() == "scratch":
            return _Result([], [], "")
        image = self.store.get(self.image_ids[stage.base])
        raw = json.loads(self.store.blob_path(image.id).read_bytes())
        return _Result(
            [layer.diff_id for layer in image.layers],
            list(image.layers),
            str(raw.get("created") or ""),
            list(raw.get("history") or []),
        )

    def _label(self, graph: BuildGraph, stage: Stage, number: int, total: int) -> str:
        name = stage.name or ("" if len(graph.needed()) == 1 else f"stage-{stage.index}")
        return f"[{name + ' ' if name else ''}{number}/{total}]"

    def _stage(self, graph: BuildGraph, stage: Stage) -> None:
        with self.lock:
            inputs = KeyInputs(self.context, dict(self.stage_keys), dict(self.image_ids), self.named)
        state = self._context_base(stage, inputs) if stage.base_context else self._start(stage)
        chain = self._keys(stage, inputs)
        total = sum(1 for _, k in chain if k is not None)
        number = 0
        for step, key in chain:
            if key is None:
                state.history.append(
                    {
                        **({"created": state.created} if state.created else {}),
                        "created_by": step.instruction.original.strip(),
                        "empty_layer": True,
                    }
                )
                continue
            number += 1
            self._step(graph, step, key, state, label=self._label(graph, stage, number, total))
        with self.lock:
            self.results[stage.index] = state
            self.stage_keys[stage.index] = next(
                (k.digest for _, k in reversed(chain) if k is not None), base_key(stage, inputs)
            )

    def _keys(self, stage: Stage, inputs: KeyInputs) -> list[tuple[Step, CacheKey | None]]:
        """Every step's key (`cachekey.stage_chain`), computed before any step runs, so a source
        missing from the context fails the build at once, located at its instruction."""
        out: list[tuple[Step, CacheKey | None]] = []
        try:
            parent = base_key(stage, inputs)
        except (ValueError, OSError) as exc:
            raise DockerfileError(
                str(exc), path=self.display, line=stage.from_.line, column=stage.from_.column
            ) from None
        for step in stage.steps:
            if not step.makes_layer:
                out.append((step, None))
                continue
            try:
                key = step_key(step, parent, inputs)
            except (ValueError, OSError) as exc:
                instr = step.instruction
                raise DockerfileError(
                    str(exc), path=self.display, line=instr.line, column=instr.column
                ) from None
            parent = key.digest
            out.append((step, key))
        return out

    def _step(self, graph: BuildGraph, step: Step, key: CacheKey, state: _Result, *, label: str) -> None:
        instr = step.instruction
        text = instr.original.strip()
        self.emit(BuildEvent(kind=BuildEventKind.STEP, step=label, line=instr.line, text=text))
        started = time.monotonic()
        hit = None if self.request.no_cache else self.cache.get(key.digest, state.diff_ids)
        if hit is None and self.request.cached_only:
            raise NotCached(f"{label} {text}: not in the build cache")
        if hit is not None:
            layer, created = hit.layer, hit.created
            self.emit(BuildEvent(kind=BuildEventKind.CACHED, step=label, line=instr.line, text=text))
        else:
            layer = self._execute(graph, step, state, label)
            created = _now()
            self.cache.put(key.digest, [*state.diff_ids, *([layer.diff_id] if layer else [])], layer, created)
        if layer is not None:
            state.diff_ids.append(layer.diff_id)
            state.layers.append(layer)
        state.created = max(state.created, created)
        state.history.append(
            {"created": created, "created_by": text, **({} if layer else {"empty_layer": True})}
        )
        if hit is None:
            self.emit(
                BuildEvent(
                    kind=BuildEventKind.DONE,
                    step=label,
                    line=instr.line,
                    text=text,
                    elapsed_s=round(time.monotonic() - started, 3),
                )
            )

    def _lowers(self, diff_ids: list[str]) -> list[Path]:
        return [self.paths.layers / c.removeprefix("sha256:") / "diff" for c in chain_ids(diff_ids)]

    def _context_base(self, stage: Stage, inputs: KeyInputs) -> _Result:
        """`FROM name` of a local named context: one layer holding its files (cached by content)."""
        key = "sha256:" + base_key(stage, inputs)
        hit = None if self.request.no_cache else self.cache.get(key, [])
        if hit is None and self.request.cached_only:
            raise NotCached(f"FROM {stage.base}: the named context is not in the build cache")
        if hit is not None:
            layer, created = hit.layer, hit.created
        else:
            try:
                layer = namedctx.context_layer(self.paths, self.store, self.named[stage.base_context],
                                               stage.from_)
            except CopyError as exc:
                where = f"{self.display}:{stage.from_.line}"
                raise BuildError(f"{where}: FROM {stage.base}: {exc.message}", line=stage.from_.line) from exc
            created = _now()
            self.cache.put(key, [layer.diff_id] if layer else [], layer, created)
        return _Result([layer.diff_id] if layer else [], [layer] if layer else [], created)

    def _source_fs(self, ref: SourceRef, stack: contextlib.ExitStack) -> Path:
        """Mount a stage's or an image's filesystem for reading (`--from`); a named local
        context is its directory."""
        if ref.context:
            return self.named[ref.context].root
        if ref.stage is not None:
            diff_ids = self.results[ref.stage].diff_ids
        else:
            diff_ids = [
                layer.diff_id for layer in self._base_image(self.image_ids.get(ref.image, ref.image)).layers
            ]
        ws = stack.enter_context(Workspace(self.paths, self._lowers(diff_ids)))
        return ws.rootfs

    def _execute(self, graph: BuildGraph, step: Step, state: _Result, label: str) -> LayerRecord | None:
        instr = step.instruction
        where = f"{self.display}:{instr.line}"

        def fail(message: str, tail: tuple[str, ...] = ()) -> BuildError:
            return BuildError(
                f"{where}: {label} {instr.original.strip()}: {message}",
                step=label,
                line=instr.line,
                tail=tail,
            )

        with contextlib.ExitStack() as stack:
            linked = isinstance(instr, CopyBase) and instr.link
            ws = stack.enter_context(Workspace(self.paths, [] if linked else self._lowers(state.diff_ids)))
            try:
                if step.kind is StepKind.RUN:
                    assert isinstance(instr, Run)
                    sources: list[Path | None] = []
                    for mount, ref in zip(step.mounts, step.mount_sources, strict=True):
                        if ref is not None:
                            sources.append(self._source_fs(ref, stack))
                        else:
                            sources.append(self.context.root if mount.type is MountType.BIND else None)
                    values = {k: v.get_secret_value() for k, v in self.request.secret_values.items()}
                    prepared = run_mounts.prepare(
                        self.paths, ws, step.mounts, sources, secrets=self.request.secrets,
                        secret_values=values, fail=fail,
                    )
                    present = run_mounts.existing(ws.rootfs, prepared.targets)
                    options = RunOptions(
                        self.request.network,
                        tuple(sorted(self.request.extra_hosts.items())),
                        self.request.shm_size,
                    )
                    run_step(
                        self.paths,
                        ws,
                        step,
                        prepared,
                        options=options,
                        on_line=lambda line: self.emit(
                            BuildEvent(kind=BuildEventKind.OUTPUT, step=label, text=line)
                        ),
                    )
                    ws.unmount()
                    run_mounts.remove_stubs(ws.upper, prepared.targets, present)
                elif isinstance(instr, CopyBase):
                    reader: ContextSource | RootfsSource = ContextSource(self.context)
                    if step.copy_from is not None and step.copy_from.context:
                        reader = ContextSource(self.named[step.copy_from.context])
                    elif step.copy_from is not None:
                        reader = RootfsSource(self._source_fs(step.copy_from, stack))
                    previous = None
                    if linked:  # BuildKit's --link: a layer made over nothing, laid on top
                        below = stack.enter_context(Workspace(self.paths, self._lowers(state.diff_ids)))
                        previous = below.rootfs
                    copy_step(ws.rootfs, instr, step.config.workdir, reader, ws.dir, previous=previous)
                else:  # WORKDIR
                    target = posixpath.join(step.config.workdir or "/", getattr(instr, "path", "."))
                    make_workdir(ws.rootfs, target, step.config.user)
            except StepFailed as exc:
                raise fail(exc.message, exc.tail) from exc
            except (CopyError, RuntimeFailure) as exc:
                if isinstance(exc, BuildError):
                    raise
                raise fail(exc.message) from exc
            ws.unmount()
            if snapshot.is_empty(ws.upper):
                return None
            tar = ws.dir / "layer.tar"
            snapshot.write_layer_tar(ws.upper, tar)
            return self.store.adopt_layer(tar, ws.upper, state.diff_ids)

    def _commit(self, graph: BuildGraph) -> Image:
        stage = graph.stages[graph.target]
        state = self.results[stage.index]
        config = imageconf.to_wire(stage.config, self.request.labels)
        document = {
            "created": state.created or _now(),
            "architecture": _arch(),
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": state.diff_ids},
            "history": state.history,
        }
        raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        return self.store.create_image(raw, tuple(state.layers), self.request.tags)


def _arch() -> str:
    from stackup.runtime.engine.images.archive import host_architecture

    return host_architecture()


def build(paths: EnginePaths, store: ImageStore, request: BuildRequest, emit: Emit) -> Image:
    """Build, emitting progress; the last event is `result`. Raises `BuildError` (located) or
    `DockerfileError`/`NotFound` before any step runs."""
    image = Build(paths, store, request, emit).run()
    emit(BuildEvent(kind=BuildEventKind.RESULT, image_id=image.id, tags=image.refs))
    return image


def prune(store: ImageStore, keep_bytes: int = 0) -> tuple[int, int]:
    return BuildCache(store).prune(keep_bytes)


def usage(store: ImageStore) -> tuple[int, int]:
    return BuildCache(store).usage()
