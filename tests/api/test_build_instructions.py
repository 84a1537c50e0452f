"""Dockerfile instructions whose effect is only visible in the built image, on the real engine:
ONBUILD triggers of a base image, WORKDIR owned by a non-root USER, symbolic `--chmod`, and
`COPY --link` (a layer made over nothing)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from stackup.api import Stack
from stackup.errors import PlanError
from tests.api.test_build import IMAGE, Lines, _project

pytestmark = pytest.mark.engine


def _service(name: str) -> str:
    return f"  {name}:\n    build:\n      context: ./{name}\n    init: true\n    command: [sleep, '1h']\n"


def test_onbuild_triggers_run_in_the_child_and_are_not_inherited(api_env: Path) -> None:
    parent = f"FROM {IMAGE}\nONBUILD COPY marker.txt /marker\nONBUILD RUN echo triggered > /triggered\n"
    child = "FROM {base}\nRUN test -f /marker && echo child > /child\n"
    grandchild = "FROM {base}\nRUN echo grand > /grand\n"
    name = _project(api_env, "", "services:\n" + _service("parent") + _service("child") + _service("grand"),
                    files={"parent/Dockerfile": parent, "parent/marker.txt": "not this one\n",
                           "child/marker.txt": "from the child's context\n", "grand/marker.txt": "x\n"})
    with Stack.load(project_name=name) as stack:
        stack.build(["parent"])
        (api_env / "child" / "Dockerfile").write_text(child.format(base=f"{name}-parent"))
        stack.build(["child"])
        (api_env / "grand" / "Dockerfile").write_text(grandchild.format(base=f"{name}-child"))
        lines = Lines()
        stack.build(["grand"], progress=lines)
        steps = [line.split("] ", 1)[1] for line in lines.lines if " DONE " not in line and "] " in line]
        assert steps == ["RUN echo grand > /grand"], lines.lines  # the triggers are not inherited
        stack.up(["child", "parent"])
        try:
            def cat(path: str) -> bytes:
                return stack.exec("child", ["cat", path]).stdout

            assert cat("/marker") == b"from the child's context\n"
            assert cat("/triggered") == b"triggered\n" and cat("/child") == b"child\n"
            assert stack.exec("parent", ["test", "-e", "/triggered"]).exit_code != 0
        finally:
            stack.down()


def test_workdir_is_owned_by_the_user_and_chmod_takes_symbolic_modes(api_env: Path) -> None:
    dockerfile = f"""\
FROM {IMAGE}
RUN mkdir -p /srv && chown 0:0 /srv
USER 1000:1000
WORKDIR /srv/app/data
USER 0
COPY --chmod=u=rwX,go=rX tree/ /tree/
COPY --chmod=+x tool.sh /tool.sh
COPY --chmod=go-r private.txt /private.txt
"""
    name = _project(api_env, dockerfile, files={"tree/sub/file.txt": "f\n", "tool.sh": "#!/bin/sh\n",
                                                "private.txt": "p\n"})
    for path, mode in (("tree/sub", 0o700), ("tree/sub/file.txt", 0o600), ("tool.sh", 0o644),
                       ("private.txt", 0o644)):
        (api_env / path).chmod(mode)
    with Stack.load(project_name=name) as stack:
        stack.build()
        stack.up()
        try:
            def stat(path: str) -> str:
                out = stack.exec("app", ["stat", "-c", "%u:%g %a", path])
                assert out.exit_code == 0, out
                return out.stdout.decode().strip()

            assert stat("/srv") == "0:0 755"  # existing: its owner is kept
            assert stat("/srv/app") == "1000:1000 755" and stat("/srv/app/data") == "1000:1000 755"
            assert stat("/tree/sub") == "0:0 755" and stat("/tree/sub/file.txt") == "0:0 644"
            assert stat("/tool.sh") == "0:0 755" and stat("/private.txt") == "0:0 600"
        finally:
            stack.down()


def test_copy_link_makes_a_layer_over_nothing(api_env: Path) -> None:
    dockerfile = f"""\
FROM {IMAGE}
RUN mkdir -p /real && ln -s /real /linked && echo old > /real/keep.txt
COPY --link config.txt /linked/config.txt
COPY --link --chown=1000:1000 config.txt /opt/app/
"""
    name = _project(api_env, dockerfile, files={"config.txt": "c\n"})
    with Stack.load(project_name=name) as stack:
        stack.build()
        stack.up()
        try:
            def sh(script: str) -> bytes:
                out = stack.exec("app", ["sh", "-c", script])
                assert out.exit_code == 0, out
                return out.stdout

            # made over nothing, the layer's /linked is a directory that hides the symlink
            # (BuildKit resolves a --link destination without the previous layers, too)
            assert sh("test -d /linked && ! test -L /linked && cat /linked/config.txt") == b"c\n"
            assert sh("cat /real/keep.txt && test ! -e /real/config.txt") == b"old\n"
            assert sh("stat -c '%u:%g' /opt/app/config.txt") == b"1000:1000\n"
            again = Lines()
            stack.build(progress=again)
            assert again.ran() == 0, again.lines
        finally:
            stack.down()


def test_a_secret_from_the_environment_is_mounted_and_never_stored(
    api_env: Path, engine_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = uuid.uuid4().hex
    monkeypatch.setenv("BUILD_TOKEN", token)
    dockerfile = f"""\
FROM {IMAGE}
RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /token-length
RUN --mount=type=secret,id=token,env=TOKEN test -n "$TOKEN" && echo ${{#TOKEN}} > /env-length
"""
    service = ("services:\n  app:\n    build:\n      context: .\n      secrets: [token]\n"
               "    init: true\n    command: [sleep, '1h']\n"
               "secrets:\n  token:\n    environment: BUILD_TOKEN\n")
    name = _project(api_env, dockerfile, service)
    with Stack.load(project_name=name) as stack:
        (spec,) = stack.build_specs().values()
        assert token not in repr(spec)
        lines = Lines()
        stack.build(progress=lines)
        assert not any(token in line for line in lines.lines)
        stack.up()
        try:
            assert stack.exec("app", ["cat", "/token-length"]).stdout.strip() == b"32"
            assert stack.exec("app", ["cat", "/env-length"]).stdout.strip() == b"32"
            assert stack.exec("app", ["test", "-e", "/run/secrets/token"]).exit_code != 0
        finally:
            stack.down()
    found = subprocess.run(["grep", "-rl", token, str(engine_root)], capture_output=True, text=True,
                           check=False)
    assert found.stdout == "", f"the secret was written down: {found.stdout}"


def test_a_secret_from_an_unset_variable_is_a_clear_error(
    api_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    service = ("services:\n  app:\n    build:\n      context: .\n      secrets: [token]\n"
               "secrets:\n  token:\n    environment: NO_SUCH_TOKEN_VAR\n")
    name = _project(api_env, "FROM $IMAGE\nRUN true\n", service)
    with Stack.load(project_name=name) as stack, pytest.raises(PlanError) as failed:
        stack.build()
    assert "secrets.token.environment" in str(failed.value) and "NO_SUCH_TOKEN_VAR" in str(failed.value)
