"""The build graph: ARG scoping, substitution per instruction, stage dependencies, targets."""

from __future__ import annotations

import pytest

from stackup.build.dockerfile import parse_instructions, parse_text
from stackup.build.dockerfile.instructions import Copy, Env, Expose, Label, Run, User, Workdir
from stackup.build.graph import BuildGraph, SourceRef, StepKind, plan_build
from stackup.build.imageconfig import ImageConfig
from stackup.build.platform import Platform
from stackup.errors import DockerfileError

AMD64 = Platform("linux", "amd64")


def plan(text: str, **kw: object) -> BuildGraph:
    kw.setdefault("build_platform", AMD64)
    return plan_build(parse_instructions(parse_text(text)), **kw)  # type: ignore[arg-type]


def test_global_args_reach_from_only() -> None:
    g = plan("ARG TAG=1\nARG IMG=debian:${TAG}\nFROM $IMG\nLABEL t=$TAG\nARG TAG\nLABEL u=$TAG\n")
    stage = g.stages[0]
    assert stage.base == "debian:1"
    labels = [s.instruction for s in stage.steps if isinstance(s.instruction, Label)]
    assert labels[0].pairs[0].value == ""  # not declared in the stage yet
    assert labels[1].pairs[0].value == "1"  # ARG without value inherits the global one


def test_build_args_override_defaults_and_platform_args() -> None:
    g = plan("ARG V=1\nFROM --platform=$BUILDPLATFORM x:$V\nARG V=2\nARG TARGETARCH\nRUN echo\n",
             build_args={"V": "9"}, target_platform=Platform("linux", "arm64"))
    stage = g.stages[0]
    assert stage.base == "x:9" and stage.platform == "linux/amd64"
    run = stage.steps[-1]
    assert dict(run.args) == {"V": "9", "TARGETARCH": "arm64"}
    assert run.run_env()["TARGETARCH"] == "arm64"


def test_env_sees_values_from_before_the_instruction() -> None:
    g = plan("FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n")
    envs = [s.instruction for s in g.stages[0].steps]
    assert isinstance(envs[1], Env) and envs[1].pairs[1].value == "hello"
    assert isinstance(envs[2], Env) and envs[2].pairs[0].value == "bye"
    assert g.stages[0].config.env == (("abc", "bye"), ("def", "hello"), ("ghi", "bye"))


def test_substitution_table() -> None:
    text = (
        "FROM scratch\nARG D=/srv P='80 443' U=app\n"
        "WORKDIR $D\nUSER ${U}:grp\nEXPOSE $P\nCOPY --chown=$U [\"${D}/x\", \"$D y\", \"/dst/$U\"]\n"
        "RUN echo $D\nCMD echo $D\n"
    )
    steps = [s.instruction for s in plan(text).stages[0].steps]
    wd, user, expose, copy, run, cmd = steps[1:]
    assert isinstance(wd, Workdir) and wd.path == "/srv"
    assert isinstance(user, User) and user.user == "app:grp"
    assert isinstance(expose, Expose) and expose.ports == ("80", "443")
    assert isinstance(copy, Copy) and copy.sources == ("/srv/x", "/srv y") and copy.dest == "/dst/app"
    assert copy.chown == "app"
    assert isinstance(run, Run) and run.command == ("echo $D",)  # the shell's business
    assert cmd.original == "CMD echo $D"


def test_base_config_env_is_visible_and_workdir_relative() -> None:
    base = ImageConfig(env=(("PATH", "/usr/bin"), ("HOME", "/root")), workdir="/")
    g = plan("FROM debian\nWORKDIR $HOME\nWORKDIR sub\nENV PATH=/x:$PATH\n",
             base_config=lambda ref: base if ref == "debian" else None)
    cfg = g.stages[0].config
    assert cfg.workdir == "/root/sub" and cfg.env_dict()["PATH"] == "/x:/usr/bin"
    assert g.stages[0].images == {"debian"}


def test_entrypoint_resets_inherited_cmd_only() -> None:
    g = plan('FROM scratch AS a\nCMD ["x"]\nFROM a\nENTRYPOINT ["e"]\nFROM a\nCMD ["y"]\nENTRYPOINT ["e"]\n')
    assert g.stages[1].config.cmd is None and g.stages[1].config.entrypoint == ("e",)
    assert g.stages[2].config.cmd == ("y",)


def test_target_needs_and_levels() -> None:
    text = (
        "FROM scratch AS base\n"
        "FROM base AS deps\nRUN a\n"
        "FROM scratch AS assets\nRUN b\n"
        "FROM scratch AS unused\n"
        "FROM base AS final\nCOPY --from=deps /a /a\nRUN --mount=type=bind,from=assets,target=/s c\n"
        "COPY --from=alpine:3 /bin/sh /sh\n"
    )
    g = plan(text)
    assert g.stages[g.target].name == "final"
    assert g.needed() == (0, 1, 2, 4)
    assert g.levels() == [(0, 2), (1,), (4,)]
    final = g.stages[4]
    assert final.deps == {0, 1, 2} and final.images == {"alpine:3"}
    assert final.steps[0].copy_from == SourceRef(stage=1)
    assert final.steps[1].mount_sources == (SourceRef(stage=2),)
    t = plan(text, target="ASSETS")
    assert t.needed() == (2,)
    assert [s.kind for s in final.steps] == [StepKind.COPY, StepKind.RUN, StepKind.COPY]


def test_copy_from_index_and_forward_names() -> None:
    g = plan("FROM scratch\nFROM scratch AS mid\nCOPY --from=0 /a /a\nCOPY --from=later /b /b\n"
             "FROM scratch AS later\n", target="mid")
    assert g.stages[1].deps == {0, 2}
    with pytest.raises(DockerfileError, match="not before this one"):
        plan("FROM scratch\nCOPY --from=0 /a /a\n")


def test_cycles_and_errors() -> None:
    g = plan("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\n")
    with pytest.raises(DockerfileError, match="circular dependency"):
        g.levels()
    with pytest.raises(DockerfileError, match="could not be found"):
        plan("FROM scratch\n", target="nope")
    with pytest.raises(DockerfileError, match="duplicate stage name"):
        plan("FROM scratch AS a\nFROM scratch AS A\n")
    with pytest.raises(DockerfileError, match="should not be blank") as info:
        plan("ARG IMG\nFROM $IMG\n")
    assert info.value.line == 2
    with pytest.raises(DockerfileError, match="X: required") as info2:
        plan("FROM scratch\nWORKDIR ${X:?required}\n")
    assert info2.value.line == 2


def test_add_url_after_substitution_is_refused() -> None:
    with pytest.raises(DockerfileError, match="ADD from a URL"):
        plan("FROM scratch\nARG U=https://x/y\nADD $U /y\n")


def test_proxies_reach_run_but_not_args() -> None:
    g = plan("FROM scratch\nRUN env\n", build_args={"HTTP_PROXY": "http://p:3128"})
    run = g.stages[0].steps[0]
    assert run.args == () and run.run_env()["HTTP_PROXY"] == "http://p:3128"


def test_named_contexts_win_over_stages_and_images() -> None:
    contexts = {"src": "/work/src", "base": "docker-image://debian:bookworm", "tools": "/opt/tools"}
    g = plan(
        "FROM scratch AS src\nFROM tools AS t\nFROM base\nCOPY --from=src a /a\n"
        "RUN --mount=from=src,target=/s true\nCOPY --from=t / /t\n",
        contexts=contexts,
    )
    final = g.stages[2]
    assert final.base == "debian:bookworm" and final.images == frozenset({"debian:bookworm"})
    copy = final.steps[0]
    assert copy.copy_from == SourceRef(context="src") and copy.instruction.from_ == "src"  # type: ignore[attr-defined]
    assert final.steps[1].mount_sources == (SourceRef(context="src"),)
    assert final.deps == frozenset({1})  # the overridden `src` stage is not needed
    assert g.stages[1].base_context == "tools" and g.stages[1].images == frozenset()
    assert g.needed() == (1, 2)


def test_a_named_context_of_an_unsupported_kind_is_located_when_used() -> None:
    with pytest.raises(DockerfileError) as failed:
        plan("FROM scratch\nCOPY --from=web / /\n", contexts={"web": "https://example.invalid/x"})
    assert failed.value.line == 2 and '"web"' in str(failed.value)
    plan("FROM scratch\nCOPY a /\n", contexts={"web": "https://example.invalid/x"})  # unused: fine


def test_onbuild_triggers_of_an_image_or_a_stage_run_first_and_are_not_inherited() -> None:
    def base_config(ref: str) -> ImageConfig | None:
        return ImageConfig(onbuild=("COPY a.txt /a", "RUN echo image trigger")) if ref == "base:1" else None

    g = plan("FROM base:1 AS one\nONBUILD RUN echo stage trigger\nRUN echo own\n"
             "FROM one AS two\nRUN echo two\n", base_config=base_config)
    one, two = g.stages
    assert [s.instruction.original for s in one.steps] == [
        "COPY a.txt /a", "RUN echo image trigger", "ONBUILD RUN echo stage trigger", "RUN echo own"]
    assert {s.instruction.line for s in one.steps[:2]} == {1}  # located at the FROM
    assert one.config.onbuild == ("RUN echo stage trigger",)
    assert [s.instruction.original for s in two.steps] == ["RUN echo stage trigger", "RUN echo two"]
    assert two.config.onbuild == ()
