"""Property-based fuzzing of the loader (short version; `bench/fuzz/run.py` runs it long).

Whatever the stack file, the override file and the `.env` say, `load` returns a project or
raises a `StackupError` subclass (located problems), within a bounded time.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackup.errors import StackupError
from stackup.spec.dotenv import parse_dotenv
from stackup.spec.interpolate import InterpolationError, substitute
from tests.spec.fuzz_strategies import SUBSTITUTIONS, check_load, dotenv_text, yaml_text

FAST = settings(
    max_examples=200,
    deadline=timedelta(seconds=5),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(yaml_text(), st.one_of(st.none(), yaml_text()), st.one_of(st.none(), dotenv_text()))
def test_loading_any_stack_fails_only_with_stackup_errors(
    compose: str, override: str | None, env: str | None
) -> None:
    files: dict[str, str | bytes] = {"compose.yaml": compose}
    if override is not None:
        files["compose.override.yaml"] = override
    if env is not None:
        files[".env"] = env
    check_load(files)


@FAST
@given(dotenv_text(), st.dictionaries(st.sampled_from(["A", "B"]), st.text(max_size=3)))
def test_any_dotenv_text_parses_or_fails_located(text: str, environ: dict[str, str]) -> None:
    try:
        parse_dotenv(text, filename=".env", lookup=environ.get)
    except StackupError as err:
        assert str(err).startswith(".env")


@FAST
@given(SUBSTITUTIONS, st.dictionaries(st.sampled_from(["A", "B", "TAG"]), st.text(max_size=3)))
def test_any_substitution_gives_text_or_an_interpolation_error(template: str, env: dict[str, str]) -> None:
    try:
        assert isinstance(substitute(template, env.get), str)
    except InterpolationError as err:
        assert err.message
