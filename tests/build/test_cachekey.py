"""Step cache keys: content based, partial invalidation, args only where used, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.build.cachekey import KeyInputs, stage_chain, stage_key, step_key
from stackup.build.context import BuildContext
from stackup.build.dockerfile import parse_instructions, parse_text
from stackup.build.graph import BuildGraph, plan_build
from stackup.build.platform import Platform

DOCKERFILE = """\
FROM debian:bookworm AS build
ARG VERSION=1
ENV APP=/app
WORKDIR $APP
COPY requirements.txt ./
RUN --mount=type=cache,target=/root/.cache pip install -r requirements.txt
COPY src/ ./src/
RUN --mount=type=secret,id=token,env=TOKEN make VERSION=$VERSION
LABEL version=$VERSION
FROM scratch
COPY --from=build /app /app
CMD ["/app/run"]
"""


def plan(text: str = DOCKERFILE, **kw: object) -> BuildGraph:
    return plan_build(parse_instructions(parse_text(text)), build_platform=Platform(),
                      **kw)  # type: ignore[arg-type]


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("a\n")
    (tmp_path / "requirements.txt").write_text("httpx\n")
    return tmp_path


def keys(graph: BuildGraph, ctx: Path) -> list[str | None]:
    inputs = KeyInputs(BuildContext(ctx), {})
    out: list[str | None] = []
    built: dict[int, str] = {}
    for level in graph.levels():
        for i in level:
            inputs = KeyInputs(BuildContext(ctx), built)
            out.extend(k.digest if k else None for _, k in stage_chain(graph.stages[i], inputs))
            built[i] = stage_key(graph.stages[i], inputs)
    return out


def test_keys_are_stable_and_metadata_makes_no_layer(ctx: Path) -> None:
    first = keys(plan(), ctx)
    assert first == keys(plan(), ctx)
    assert first[0] is None and first[1] is None  # ARG, ENV
    assert all(k is not None and k.startswith("sha256:") for k in first[2:7])
    assert first[7] is None  # LABEL


def test_one_file_change_reruns_from_the_copy_that_reads_it(ctx: Path) -> None:
    before = keys(plan(), ctx)
    (ctx / "src" / "a.py").write_text("changed\n")
    after = keys(plan(), ctx)
    assert after[:5] == before[:5]  # WORKDIR, first COPY, pip RUN cached
    assert after[5] != before[5] and after[6] != before[6]  # COPY src/, make
    assert after[-2] != before[-2]  # the final stage's COPY --from follows


def test_build_arg_changes_only_steps_that_see_it(ctx: Path) -> None:
    before = keys(plan(), ctx)
    after = keys(plan(build_args={"VERSION": "2"}), ctx)
    assert after[:4] == before[:4]  # WORKDIR and COPY do not read VERSION
    # RUN steps see every ARG in scope (it is in their environment), as in Docker
    assert after[4] != before[4] and after[6] != before[6]


def test_label_change_keeps_every_layer(ctx: Path) -> None:
    before = keys(plan(), ctx)
    after = keys(plan(DOCKERFILE.replace("LABEL version=$VERSION", "LABEL version=x")), ctx)
    assert [k for k in after if k] == [k for k in before if k]


def test_moving_lines_or_spelling_does_not_matter(ctx: Path) -> None:
    spaced = DOCKERFILE.replace("COPY src/ ./src/", "# comment\nCOPY   src/ \\\n  ./src/")
    assert [k for k in keys(plan(spaced), ctx) if k] == [k for k in keys(plan(), ctx) if k]


def test_printable_form_never_shows_secrets_or_arg_values(ctx: Path) -> None:
    graph = plan(build_args={"VERSION": "hunter2-very-secret"})
    chain = stage_chain(graph.stages[0], KeyInputs(BuildContext(ctx)))
    run_key = chain[6][1]
    assert run_key is not None
    text = run_key.describe()
    assert "hunter2" not in text
    assert '"type":"secret"' in text and '"id":"token"' in text
    assert "VERSION=sha256:" in text


def test_proxy_args_are_not_in_keys(ctx: Path) -> None:
    base = keys(plan(), ctx)
    assert keys(plan(build_args={"HTTP_PROXY": "http://proxy:3128"}), ctx) == base


def test_base_image_id_changes_everything(ctx: Path) -> None:
    graph = plan()
    a = stage_chain(graph.stages[0], KeyInputs(BuildContext(ctx), image_ids={"debian:bookworm": "sha256:1"}))
    b = stage_chain(graph.stages[0], KeyInputs(BuildContext(ctx), image_ids={"debian:bookworm": "sha256:2"}))
    assert all(x[1] != y[1] for x, y in zip(a, b, strict=True) if x[1] is not None)


def test_step_cache_key_method(ctx: Path) -> None:
    graph = plan()
    step = graph.stages[0].steps[3]
    key = step_key(step, "sha256:parent", KeyInputs(BuildContext(ctx)))
    assert key.digest.startswith("sha256:") and "parent: sha256:parent" in key.describe()


def test_copy_from_unbuilt_stage_is_an_ordering_error(ctx: Path) -> None:
    graph = plan()
    with pytest.raises(KeyError, match="levels"):
        stage_chain(graph.stages[1], KeyInputs(BuildContext(ctx)))


def test_bind_mount_of_the_context_keys_on_its_content(ctx: Path) -> None:
    graph = plan("FROM scratch\nRUN --mount=type=bind,source=src,target=/s make\n")
    step = graph.stages[0].steps[0]
    before = step_key(step, "p", KeyInputs(BuildContext(ctx)))
    (ctx / "requirements.txt").write_text("other\n")  # not bound: no change
    assert step_key(step, "p", KeyInputs(BuildContext(ctx))) == before
    (ctx / "src" / "a.py").write_text("b\n")
    assert step_key(step, "p", KeyInputs(BuildContext(ctx))) != before
