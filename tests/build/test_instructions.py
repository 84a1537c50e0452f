"""Typed instructions: BuildKit's checks, and located refusals of what the builder cannot do."""

from __future__ import annotations

import re

import pytest

from stackup.build.dockerfile import Dockerfile, parse_instructions, parse_text
from stackup.build.dockerfile.instructions import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    MountType,
    NetworkMode,
    Onbuild,
    Run,
    Sharing,
)
from stackup.build.dockerfile.mounts import MountError, parse_mount
from stackup.errors import DockerfileError


def typed(text: str) -> Dockerfile:
    return parse_instructions(parse_text(text))


def only(text: str) -> object:
    return typed("FROM scratch\n" + text).stages[0][1][0]


def test_stages_and_meta_args() -> None:
    df = typed("ARG A=1\nARG B\nFROM x AS Build\nRUN a\nFROM --platform=$BUILDPLATFORM y\n")
    assert [a.args[0].key for a in df.meta_args] == ["A", "B"]
    assert df.meta_args[1].args[0].default is None
    (f1, i1), (f2, _) = df.stages
    assert (f1.base, f1.stage_name) == ("x", "build")
    assert f2.platform == "$BUILDPLATFORM"
    assert isinstance(i1[0], Run)


def test_copy_and_add_flags() -> None:
    c = only("COPY --from=build --chown=1:2 --chmod=644 --link --parents --exclude=*.md --exclude=x "
             "a b /d/\n")
    assert isinstance(c, Copy)
    assert (c.from_, c.chown, c.chmod, c.link, c.parents) == ("build", "1:2", "644", True, True)
    assert c.excludes == ("*.md", "x") and c.sources == ("a", "b") and c.dest == "/d/"
    a = only('ADD --unpack=false ["x y.tar", "/d"]\n')
    assert isinstance(a, Add) and a.unpack is False and a.sources == ("x y.tar",)


def test_heredoc_copy_source() -> None:
    c = only("COPY <<-EOF /etc/conf\n\tk=v\n\tEOF\n")
    assert isinstance(c, Copy) and c.sources == ()
    assert c.inline[0].data == "k=v\n" and c.inline[0].expand


def test_run_forms_and_mounts() -> None:
    r = only("RUN --network=none --mount=type=cache,target=/c,sharing=locked echo hi\n")
    assert isinstance(r, Run)
    assert r.command == ("echo hi",) and r.prepend_shell and r.network is NetworkMode.NONE
    m = parse_mount(r.mount_specs[0], lambda v: v)
    assert (m.type, m.target, m.sharing, m.readonly) == (MountType.CACHE, "/c", Sharing.LOCKED, False)
    e = only('RUN ["a", "b"]\n')
    assert isinstance(e, Run) and e.command == ("a", "b") and not e.prepend_shell


def test_env_label_arg_forms() -> None:
    e = only("ENV A=1 B='x y'\n")
    assert isinstance(e, Env) and [(p.key, p.value) for p in e.pairs] == [("A", "1"), ("B", "'x y'")]
    legacy = only("ENV PATH /usr/bin:$PATH\n")
    assert isinstance(legacy, Env) and legacy.pairs[0].legacy and legacy.pairs[0].value == "/usr/bin:$PATH"
    a = only("ARG X Y=2\n")
    assert isinstance(a, Arg) and [(d.key, d.default) for d in a.args] == [("X", None), ("Y", "2")]


def test_cmd_entrypoint_expose_health_onbuild() -> None:
    assert only("CMD echo hi\n") == Cmd(only("CMD echo hi\n").node, command=("echo hi",))  # type: ignore[attr-defined]
    ep = only("ENTRYPOINT []\n")
    assert isinstance(ep, Entrypoint) and ep.command == ()
    ex = only("EXPOSE 8080 80/udp\n")
    assert isinstance(ex, Expose) and ex.ports == ("80/udp", "8080")
    hc = only("HEALTHCHECK --interval=1m30s --retries=3 CMD curl -f x\n")
    assert isinstance(hc, Healthcheck)
    assert hc.test == ("CMD-SHELL", "curl -f x") and hc.interval_ns == 90 * 10**9 and hc.retries == 3
    ob = only("ONBUILD COPY . /src\n")
    assert isinstance(ob, Onbuild) and ob.expression == "COPY . /src"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ADD https://example.com/a.tgz /x", "ADD from a URL is not supported: no outside network"),
        ("ADD git@github.com:a/b.git /x", "ADD from a git repository is not supported"),
        ("ADD --checksum=sha256:00 a /x", "ADD --checksum is not supported"),
        ("ADD --keep-git-dir a /x", "--keep-git-dir is not supported"),
        ("RUN --security=insecure x", "RUN --security is not supported"),
        ("RUN --mount=type=ssh x", "type=ssh is not supported"),
        ("RUN --network=bridge x", "unsupported network mode"),
        ("COPY --from=$STAGE a /b", "variable expansion is not supported for --from"),
        ("RUN --mount=type=bind,from=$X,target=/x y", "doesn't support variable expansion"),
        ("COPY --user=me a /b", "unknown flag: --user"),
        ("COPY --chwon=me a /b", "did you mean chown"),
        ("COPY --link=maybe a /b", "expecting boolean value"),
        ("COPY --from a /b", "missing a value on flag: --from"),
        ("COPY a", "requires at least two arguments"),
        ("COPY a <<EOF\nx\nEOF", "cannot accept a heredoc as a destination"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("SHELL /bin/bash -c", "SHELL requires the arguments to be in JSON form"),
        ("HEALTHCHECK CONNECT x", "Unknown type"),
        ("HEALTHCHECK --interval=5 CMD x", "invalid duration"),
        ("HEALTHCHECK --retries=-1 CMD x", "cannot be negative"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
        ("ONBUILD FROM x", "isn't allowed as an ONBUILD trigger"),
        ("FRUM x", "unknown instruction: FRUM (did you mean FROM?)"),
        ('VOLUME [" "]', "VOLUME specified can not be an empty string"),
    ],
)
def test_refusals_are_located(line: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=re.escape(message)) as info:
        parse_instructions(parse_text("FROM scratch\n" + line + "\n", path="Dockerfile"))
    assert info.value.line == 2 and str(info.value).startswith("Dockerfile:2:1: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RUN x\n", "no build stage in current context"),
        ("FROM a AS 1x\n", "invalid name for build stage"),
        ("FROM a b\n", "FROM requires either one or three arguments"),
    ],
)
def test_stage_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message):
        typed(text)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=tmpfs,target=/t,size=64m,mode=755", "mode not allowed"),
        ("type=bind,target=/t,sharing=shared", "invalid cache sharing"),
        ("type=secret,id=a,source=b", "both source and id"),
        ("type=secret", "one of source, target required"),
        ("type=cache,target=/c,colour=red", "unexpected key 'colour'"),
        ("type=cache", "requires a target"),
        ("type=volume,target=/x", "unsupported mount type"),
        ("target=/x,ro=maybe", "invalid value for ro"),
        ('type=bind,"target=/x', "failed to parse csv"),
    ],
)
def test_mount_errors(spec: str, message: str) -> None:
    with pytest.raises(MountError, match=message):
        parse_mount(spec, lambda v: v)


def test_secret_mount_defaults() -> None:
    m = parse_mount("type=secret,id=npmrc,mode=0400,uid=1000", lambda v: v)
    assert (m.target, m.secret_id, m.mode) == ("/run/secrets/npmrc", "npmrc", 0o400)
    assert m.uid == 1000 and m.readonly
    t = parse_mount("type=tmpfs,target=/t,size=64m", lambda v: v)
    assert t.size == 64 * 1024 * 1024 and not t.readonly
