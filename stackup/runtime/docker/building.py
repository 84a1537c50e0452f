"""A `BuildSpec` on a Docker (or Podman) daemon, through the Engine API's classic `POST /build`.

What that API takes is passed: the Dockerfile (an inline one is written to a temporary file
outside the context, which the SDK adds to the context it uploads), build args, target, labels,
network mode, shm size, extra hosts, `no_cache`, `pull`; `tags` beyond the first are added with
`POST /images/{id}/tag` after the build. Build secrets and named contexts exist only in
BuildKit's session protocol, which this API (and the docker SDK) cannot speak: a spec with
either is refused before anything is sent, naming the field, rather than built without it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from stackup.errors import RuntimeFailure, UsageError
from stackup.runtime.base import BuildProgress, BuildSpec

_BUILDKIT_ONLY = {
    "secrets": "build secrets",
    "secret_values": "build secrets",
    "additional_contexts": "named build contexts",
}


def refuse_unsupported(spec: BuildSpec) -> None:
    """`UsageError` naming the first field of `spec` this API cannot honour."""
    for field, what in _BUILDKIT_ONLY.items():
        if getattr(spec, field):
            name = "secrets" if field == "secret_values" else field
            raise UsageError(
                f"build.{name} of {spec.tag}: the Docker runtime builds through the daemon's classic "
                f"build API, which has no {what} (BuildKit only); build on the native engine "
                f"(--runtime native) or remove `{name}`"
            )


@contextlib.contextmanager
def _dockerfile(spec: BuildSpec) -> Iterator[str]:
    """The Dockerfile argument: the spec's path, or an inline Dockerfile in a temporary file."""
    if spec.dockerfile_inline is None:
        yield spec.dockerfile
        return
    with tempfile.TemporaryDirectory(prefix="stackup-build-") as directory:
        path = os.path.join(directory, "Dockerfile")
        with open(path, "w", encoding="utf-8") as f:
            f.write(spec.dockerfile_inline)
        yield path


def build_arguments(spec: BuildSpec, dockerfile: str) -> dict[str, Any]:
    """Keyword arguments of the docker SDK's `APIClient.build` for `spec`."""
    return {
        "path": spec.context,
        "dockerfile": dockerfile,
        "tag": spec.tag,
        "buildargs": dict(spec.args) or None,
        "target": spec.target,
        "labels": dict(spec.labels) or None,
        "network_mode": spec.network,
        "shmsize": spec.shm_size,
        "extra_hosts": dict(spec.extra_hosts) or None,
        "nocache": spec.no_cache,
        "pull": spec.pull,
        "rm": True,
        "forcerm": True,
        "decode": True,
    }


def run_build(api: Any, spec: BuildSpec, progress: BuildProgress | None = None) -> None:
    """Build and tag; the daemon's error line (and the step output before it) kept."""
    refuse_unsupported(spec)
    tail: list[str] = []
    with _dockerfile(spec) as dockerfile:
        for line in api.build(**build_arguments(spec, dockerfile)):
            if not isinstance(line, dict):
                continue
            if line.get("error"):
                context = "".join(tail[-5:]).strip()
                raise RuntimeFailure(
                    f"build {spec.tag}: {line['error'].strip()}" + (f"\n{context}" if context else "")
                )
            if line.get("stream"):
                tail.append(str(line["stream"]))
                if progress is not None and str(line["stream"]).strip():
                    progress(str(line["stream"]).rstrip("\n"))
    for extra in dict.fromkeys(spec.tags):
        if extra == spec.tag:
            continue
        repo, _, tag = extra.rpartition(":") if ":" in extra.rsplit("/", 1)[-1] else (extra, "", "latest")
        api.tag(spec.tag, repo, tag or "latest")
