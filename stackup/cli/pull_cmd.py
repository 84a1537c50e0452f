"""`stackup pull|push [SERVICE...]` and `stackup image pull|push|tag NAME`: registry transfers.

Progress is one line per layer state change on stderr (`Already exists`, `Pull complete`, as
`docker pull` prints them without a terminal), never one per chunk; `--quiet` prints nothing but
errors. Results go to stdout: one line per image (`NAME ID` for a pull, `NAME DIGEST` for a push).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli.context import GlobalOptions
from stackup.cli.output import warn, write

if TYPE_CHECKING:
    from stackup.api.pulling import Transfer
    from stackup.runtime.base import LayerProgress, TransferProgress
    from stackup.spec.loader import LoadedProject

_WORDS = {"exists": "Already exists", "done": "Pull complete"}
_PUSH_WORDS = {"exists": "Layer already exists", "done": "Pushed"}


class _LayerLines:
    """Prints a layer's line when its state changes (thread-safe: transfers report in parallel)."""

    def __init__(self, words: dict[str, str]) -> None:
        self.words = words
        self.seen: set[tuple[str, str, str]] = set()
        self.lock = threading.Lock()

    def __call__(self, event: LayerProgress) -> None:
        word = self.words.get(str(event.state))
        key = (event.image, event.layer, str(event.state))
        if word is None:
            return
        with self.lock:
            if key in self.seen:
                return
            self.seen.add(key)
            short = event.layer.removeprefix("sha256:")[:12]
            sys.stderr.write(f"{event.image}: {short}: {word}\n")
            sys.stderr.flush()


def _progress(quiet: bool, words: dict[str, str]) -> TransferProgress | None:
    return None if quiet else _LayerLines(words)


def _report(results: list[Transfer], verb: str, quiet: bool) -> None:
    for item in results:
        if item.error:
            warn(item.error)
        elif item.skipped:
            if not quiet:
                sys.stderr.write(f"{', '.join(item.services)}: skipped ({item.skipped})\n")
        elif not quiet:
            write(f"{verb} {item.ref} {item.image}")


def pull(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    ignore_pull_failures: Annotated[
        bool, typer.Option("--ignore-pull-failures", help="Pull what can be pulled; warn about the rest.")
    ] = False,
    include_deps: Annotated[
        bool, typer.Option("--include-deps", help="Also pull the services' dependencies.")
    ] = False,
) -> None:
    """Pull the images of the stack's services, in parallel."""
    opts: GlobalOptions = ctx.obj
    names = tuple(services or ())
    with opts.stack(names) as stack:
        results = stack.pull(names, include_deps=include_deps, ignore_failures=ignore_pull_failures,
                             progress=_progress(quiet, _WORDS))
        if stack.loaded is not None and not any(t.error for t in results):
            _remember_pull(stack.loaded, results)
    _report(results, "Pulled", quiet)


def _remember_pull(loaded: LoadedProject, results: list[Transfer]) -> None:
    """Record what a later identical `pull` must find to skip loading (see `cli/pullstack.py`)."""
    from stackup.cli.context import ARGV
    from stackup.cli.fastpath import discover
    from stackup.cli.pullstack import remember, split_pull_argv
    from stackup.planner.pulls import parse_policy
    from stackup.registry.reference import Reference

    split = split_pull_argv(ARGV)
    if split is None or loaded.inputs is None or not loaded.inputs.complete:
        return
    stack_files, env_files = discover(split[0], Path.cwd())
    if stack_files != [str(f) for f in loaded.files]:
        return  # discovery depends on something the shortcut cannot see: never cache
    project = loaded.project
    services = []
    for name in sorted({name for t in results for name in t.services}):
        service = project.services[name]
        services.append({
            "name": name, "image": service.image or "", "declared": service.pull_policy,
            "policy": parse_policy(service.pull_policy, service.pull_refresh_after)[0].value,
            "platform": service.platform,
            "familiar": Reference.parse(service.image).familiar if service.image else "",
        })
    inputs = {"files": dict(loaded.inputs.files), "variables": dict(loaded.inputs.variables)}
    with contextlib.suppress(OSError):
        remember(ARGV, project=project.name, stack_files=stack_files, env_files=env_files, inputs=inputs,
                 services=services)


def push(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    ignore_push_failures: Annotated[
        bool, typer.Option("--ignore-push-failures", help="Push what can be pushed; warn about the rest.")
    ] = False,
) -> None:
    """Push the images of services built here (`build:` and `image:`) to their registries."""
    opts: GlobalOptions = ctx.obj
    names = tuple(services or ())
    with opts.stack(names) as stack:
        results = stack.push(names, ignore_failures=ignore_push_failures,
                             progress=_progress(quiet, _PUSH_WORDS))
    _report(results, "Pushed", quiet)


def image_pull(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(metavar="NAME[:TAG|@DIGEST]...")],
    platform: Annotated[str | None, typer.Option("--platform", help="os/arch[/variant]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the image ids.")] = False,
) -> None:
    """Pull images from their registries (several at once, in parallel)."""
    from stackup.api.images import pull_images

    opts: GlobalOptions = ctx.obj
    images = pull_images(names, platform=platform, runtime=opts.runtime, progress=_progress(quiet, _WORDS))
    for name, image in zip(names, images, strict=True):
        write(image.id if quiet else f"Pulled {name} {image.id}")


def image_push(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="NAME[:TAG]")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the digest.")] = False,
) -> None:
    """Push an image to the registry its name points at."""
    from stackup.api.images import push_image

    opts: GlobalOptions = ctx.obj
    digest = push_image(name, runtime=opts.runtime, progress=_progress(quiet, _PUSH_WORDS))
    write(digest if quiet else f"Pushed {name} {digest}")


def image_tag(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="IMAGE (name or id)")],
    target: Annotated[str, typer.Argument(help="NEW_NAME[:TAG]")],
) -> None:
    """Give an image another name (`docker tag`)."""
    from stackup.api.images import tag_image

    opts: GlobalOptions = ctx.obj
    tag_image(source, target, runtime=opts.runtime)


def register(app: typer.Typer) -> None:
    from stackup.cli.engine_cmd import image_app

    app.command("pull")(pull)
    app.command("push")(push)
    image_app.command("pull")(image_pull)
    image_app.command("push")(image_push)
    image_app.command("tag")(image_tag)
