"""`additional_contexts` on the real engine: a named local directory read by `COPY --from`,
`RUN --mount=from=` and `FROM`, a `docker-image://` context as a base, a context overriding a
stage of the same name (BuildKit's rule), and the content of a named context in the cache key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.api import Stack
from stackup.errors import DockerfileError
from tests.api.test_build import IMAGE, Lines, _project

pytestmark = pytest.mark.engine

DOCKERFILE = """\
FROM scratch AS shared
FROM assets AS files
FROM base
COPY --from=shared greeting.txt /greeting
COPY --from=files / /assets/
RUN --mount=from=shared,target=/mnt/shared cat /mnt/shared/greeting.txt > /mounted
CMD ["sleep", "3600"]
"""
COMPOSE = f"""\
services:
  app:
    init: true
    build:
      context: ./app
      additional_contexts:
        shared: ./shared
        assets: ./assets
        base: docker-image://{IMAGE}
"""


def test_named_contexts_are_read_by_copy_mount_and_from(api_env: Path) -> None:
    name = _project(api_env, "", COMPOSE, files={
        "app/Dockerfile": DOCKERFILE, "shared/greeting.txt": "hello\n", "assets/logo.txt": "logo\n",
        "assets/.dockerignore": "secret.txt\n", "assets/secret.txt": "not copied\n",
    })
    with Stack.load(project_name=name) as stack:
        stack.build()
        stack.up()
        try:
            def cat(path: str) -> bytes:
                result = stack.exec("app", ["cat", path])
                assert result.exit_code == 0, result
                return result.stdout

            assert cat("/greeting") == b"hello\n" and cat("/mounted") == b"hello\n"
            assert cat("/assets/logo.txt") == b"logo\n"
            assert stack.exec("app", ["test", "-e", "/assets/secret.txt"]).exit_code != 0
            again = Lines()
            stack.build(progress=again)
            assert again.ran() == 0, again.lines
            (api_env / "shared" / "greeting.txt").write_text("changed\n")
            changed = Lines()
            stack.build(progress=changed)
            assert changed.ran() == 3, changed.lines  # the COPY --from=shared and every step after it
            stack.up()
            assert cat("/greeting") == b"changed\n" and cat("/mounted") == b"changed\n"
            (api_env / "assets" / "logo.txt").write_text("logo 2\n")
            stack.build()
            stack.up()
            assert cat("/assets/logo.txt") == b"logo 2\n"
        finally:
            stack.down()


def test_a_context_kind_that_cannot_be_read_is_a_located_error(api_env: Path) -> None:
    compose = ("services:\n  app:\n    build:\n      context: .\n      additional_contexts:\n"
               "        src: https://example.invalid/src.git\n")
    name = _project(api_env, "FROM $IMAGE\nCOPY --from=src . /src\n", compose)
    with Stack.load(project_name=name) as stack, pytest.raises(DockerfileError) as failed:
        stack.build()
    message = str(failed.value)
    assert "Dockerfile:2" in message and '"src"' in message and "https://example.invalid" in message
