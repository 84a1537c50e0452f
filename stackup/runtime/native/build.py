"""The client half of a build: a `BuildSpec` -> the engine's `POST /build`, progress as lines.

Relative paths (context, Dockerfile, secrets) are made absolute here, since the engine has no
working directory. The engine reports every failure as the stream's last event; this turns it
back into the error tree: `DockerfileError` for a wrong Dockerfile, `NotFound` for a missing base
image (with how to get it), `BuildFailed` (step, line, output tail) for a failed step.
"""

from __future__ import annotations

import os

from pydantic import SecretStr

from stackup.errors import RuntimeFailure
from stackup.runtime.base import BuildProgress, BuildSpec
from stackup.runtime.native.client import EngineClient
from stackup.runtime.native.contexts import uploaded
from stackup.runtime.wire.build import BuildEvent, BuildEventKind, BuildRequest
from stackup.runtime.wire.buildtext import build_error, progress_line
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
        secret_values={k: SecretStr(v) for k, v in spec.secret_values.items()},
        additional_contexts={k: _local(v) for k, v in spec.additional_contexts.items()},
        network=spec.network,
        extra_hosts=dict(spec.extra_hosts),
        shm_size=spec.shm_size,
    )


def _local(value: str) -> str:
    """A named context that is a local path, made absolute; URLs and `kind:` forms as given."""
    if "://" in value or value.split(":", 1)[0] in ("service", "target"):
        return value
    return os.path.abspath(value)


def describe(event: BuildEvent) -> str:
    """One progress line, as `stackup build --progress plain` prints it."""
    return progress_line(event.model_dump(mode="json"))


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
            raise build_error(event.model_dump(mode="json"), dockerfile)
        if event.kind is BuildEventKind.RESULT:
            return client.inspect_image(event.image_id)
    raise RuntimeFailure(f"build {spec.tag}: the engine ended the build without a result")
