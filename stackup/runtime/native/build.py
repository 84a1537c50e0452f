"""The client half of a build: a `BuildSpec` -> the engine's `POST /build`, progress as lines.

Relative paths (context, Dockerfile, secrets) are made absolute here, since the engine has no
working directory. The engine reports every failure as the stream's last event; this turns it
back into the error tree: `DockerfileError` for a wrong Dockerfile, `NotFound` for a missing base
image (with how to get it), `BuildFailed` (step, line, output tail) for a failed step.
"""

from __future__ import annotations

import os

from stackup.errors import BuildFailed, DockerfileError, NotFound, RuntimeFailure
from stackup.runtime.base import BuildProgress, BuildSpec
from stackup.runtime.native.client import EngineClient
from stackup.runtime.native.contexts import uploaded
from stackup.runtime.wire.build import BuildEvent, BuildEventKind, BuildRequest
from stackup.runtime.wire.images import ImageRecord


def request_of(spec: BuildSpec) -> BuildRequest:
    context = os.path.abspath(spec.context)
    return BuildRequest(
        context=context,
        dockerfile=spec.dockerfile,
        dockerfile_inline=spec.dockerfile_inline,
        args=dict(spec.args),
        target=spec.target,
        tags=tuple(dict.fromkeys((spec.tag, *spec.tags))),
        labels=dict(spec.labels),
        no_cache=spec.no_cache,
        pull=spec.pull,
        secrets={k: os.path.abspath(v) for k, v in spec.secrets.items()},
        additional_contexts=dict(spec.additional_contexts),
        network=spec.network,
        extra_hosts=dict(spec.extra_hosts),
        shm_size=spec.shm_size,
    )


def describe(event: BuildEvent) -> str:
    """One progress line, as `stackup build --progress plain` prints it."""
    if event.kind is BuildEventKind.STEP:
        return f"{event.step} {event.text}"
    if event.kind is BuildEventKind.CACHED:
        return f"{event.step} CACHED"
    if event.kind is BuildEventKind.DONE:
        return f"{event.step} DONE {event.elapsed_s:.1f}s"
    if event.kind is BuildEventKind.OUTPUT:
        return f"{event.step} | {event.text}"
    if event.kind is BuildEventKind.RESULT:
        return f"built {event.image_id[7:19]} {' '.join(event.tags)}".rstrip()
    return f"ERROR {event.text}"


def _raise(event: BuildEvent, dockerfile: str) -> None:
    if event.error_kind == "dockerfile":
        raise DockerfileError(
            event.text.split(": ", 1)[-1] if event.line else event.text, path=dockerfile, line=event.line
        )
    if event.error_kind == "not_found":
        raise NotFound(event.text)
    if event.step:
        raise BuildFailed(event.text, step=event.step, line=event.line, tail=event.tail)
    raise RuntimeFailure(event.text)


def build_on_engine(
    client: EngineClient, spec: BuildSpec, progress: BuildProgress | None = None
) -> ImageRecord:
    request = request_of(spec)
    dockerfile = (
        spec.dockerfile if os.path.isabs(spec.dockerfile) else os.path.join(request.context, spec.dockerfile)
    )
    if not client.remote:
        return _follow(client, request, spec, dockerfile, progress)
    with uploaded(client, request) as sent:  # the engine cannot read this machine's directory
        return _follow(client, sent, spec, dockerfile, progress)


def _follow(
    client: EngineClient,
    request: BuildRequest,
    spec: BuildSpec,
    dockerfile: str,
    progress: BuildProgress | None,
) -> ImageRecord:
    for event in client.build(request):
        if progress is not None and event.kind is not BuildEventKind.ERROR:
            progress(describe(event))
        if event.kind is BuildEventKind.ERROR:
            _raise(event, dockerfile)
        if event.kind is BuildEventKind.RESULT:
            return client.inspect_image(event.image_id)
    raise RuntimeFailure(f"build {spec.tag}: the engine ended the build without a result")
