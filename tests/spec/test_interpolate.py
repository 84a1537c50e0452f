"""Variable substitution, ported case for case from compose-go `template/template_test.go`.

Upstream tests that exercise hooks stackup does not have (custom substitution and replacement
functions) are ported only for their assertions on the default behaviour.
"""

from __future__ import annotations

import pytest

from stackup.spec.errors import ProblemCollector
from stackup.spec.interpolate import InterpolationError, interpolate_tree, substitute
from stackup.spec.tree import Tag, Tagged

DEFAULTS = {"FOO": "first", "BAR": "", "JSON": '{"json":2}'}


def _sub(template: str, env: dict[str, str] = DEFAULTS) -> str:
    return substitute(template, env.get)


OK_CASES = [
    # TestEscaped, TestSubstituteNoMatch
    ("$${foo}", "${foo}"),
    ("foo", "foo"),
    # TestUnescaped: `$` not followed by a name, `{` or `$` stays literal
    ("a $ string", "a $ string"),
    ("^REGEX$", "^REGEX$"),
    ("$}", "$}"),
    ("$", "$"),
    # TestNonBraced (docker/compose#8601)
    ("$FOO-bar", "first-bar"),
    # TestNoValueNoDefault, TestValueNoDefault
    ("This ${missing} var", "This  var"),
    ("This ${BAR} var", "This  var"),
    ("This $FOO var", "This first var"),
    ("This ${FOO} var", "This first var"),
    # TestNoValueWithDefault
    ("ok ${missing:-def}", "ok def"),
    ("ok ${missing-def}", "ok def"),
    # TestEmptyValueWithSoftDefault, TestValueWithSoftDefault, TestEmptyValueWithHardDefault
    ("ok ${BAR:-def}", "ok def"),
    ("ok ${FOO:-def}", "ok first"),
    ("ok ${BAR-def}", "ok "),
    # TestPresentValueWithUnset(2), ...WithNonEmpty, ...AndNonEmptyWithNonEmpty, ...WithSet,
    # ...AndNotEmptyWithSet
    ("ok ${UNSET_VAR:+presence_value}", "ok "),
    ("ok ${UNSET_VAR+presence_value}", "ok "),
    ("ok ${FOO:+presence_value}", "ok presence_value"),
    ("ok ${FOO+presence_value}", "ok presence_value"),
    ("ok ${BAR+presence_value}", "ok presence_value"),
    ("ok ${BAR:+presence_value}", "ok "),
    # TestNonAlphanumericDefault
    ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
    # TestInterpolationExternalInterference: operators in the surrounding text do not matter
    ("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
    ("+ok ${UNSET:-${BAR-defaultValue}}", "+ok "),
    ("-ok ${FOO:-defaultValue}", "-ok first"),
    (":-ok ${UNSET-defaultValue}", ":-ok defaultValue"),
    (":-ok ${BAR-defaultValue}", ":-ok "),
    (":?ok ${BAR-defaultValue}", ":?ok "),
    (":?ok ${BAR:-defaultValue}", ":?ok defaultValue"),
    (":+ok ${BAR:-defaultValue}", ":+ok defaultValue"),
    ("+ok ${BAR-defaultValue}", "+ok "),
    ("?ok ${BAR:-defaultValue}", "?ok defaultValue"),
    # TestDefaultsWithNestedExpansion
    ("ok ${UNSET_VAR-$FOO}", "ok first"),
    ("ok ${UNSET_VAR-${FOO}}", "ok first"),
    ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
    ("ok ${BAR:-$FOO}", "ok first"),
    ("ok ${BAR:-${FOO}}", "ok first"),
    ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
    ("ok ${BAR+$FOO}", "ok first"),
    ("ok ${BAR+$FOO ${FOO:+second}}", "ok first second"),
    # TestDefaultsForMandatoryVariables
    ("ok ${FOO:?err}", "ok first"),
    ("ok ${FOO?err}", "ok first"),
    ("ok ${BAR?err}", "ok "),
    # TestSubstituteWithCustomFunc / TestSubstituteWithReplacementFunc (default-behaviour parts)
    ("ok ${FOO}", "ok first"),
    ("ok ${BAR}", "ok "),
    ("ok ${SUBDOMAIN:-redis}.${FOO:?}", "ok redis.first"),
    # TestPrecedence: the first operator after the name wins
    ("${UNSET_VAR-myerror?msg}", "myerror?msg"),
    ("${FOO?bar-baz}", "first"),
    ("${BAR:-default_value_for_empty_var}", "default_value_for_empty_var"),
    ("${UNSET_VAR-default_value_for_unset_var}", "default_value_for_unset_var"),
    # TestNoValueWithCurlyBracesDefault, TestValueWithCurlyBracesDefault
    ('ok ${missing:-{"json":1}}', 'ok {"json":1}'),
    ('ok ${missing-{"json":1}}', 'ok {"json":1}'),
    ('ok ${JSON:-{"json":1}}', 'ok {"json":2}'),
    ('ok ${JSON-{"json":1}}', 'ok {"json":2}'),
]


@pytest.mark.parametrize(("template", "expected"), OK_CASES)
def test_substitute(template: str, expected: str) -> None:
    assert _sub(template) == expected


ERROR_CASES = [
    # TestInvalid
    ("${", "invalid interpolation format"),
    ("${}", "invalid interpolation format"),
    ("${ }", "invalid interpolation format"),
    ("${ foo}", "invalid interpolation format"),
    ("${foo }", "invalid interpolation format"),
    ("${foo!}", "invalid interpolation format"),
    # TestMandatoryVariableErrors
    ("not ok ${UNSET_VAR:?Mandatory Variable Unset}",
     "required variable UNSET_VAR is missing a value: Mandatory Variable Unset"),
    ("not ok ${BAR:?Mandatory Variable Empty}",
     "required variable BAR is missing a value: Mandatory Variable Empty"),
    ("not ok ${UNSET_VAR:?}", "required variable UNSET_VAR is missing a value"),
    ("not ok ${UNSET_VAR?Mandatory Variable Unset}",
     "required variable UNSET_VAR is missing a value: Mandatory Variable Unset"),
    ("not ok ${UNSET_VAR?}", "required variable UNSET_VAR is missing a value"),
    # TestMandatoryVariableErrorsWithNestedExpansion
    ("not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
     "required variable UNSET_VAR is missing a value: Mandatory Variable first"),
    ("not ok ${UNSET_VAR?Mandatory Variable ${FOO}}",
     "required variable UNSET_VAR is missing a value: Mandatory Variable first"),
    # TestPrecedence
    ("${UNSET_VAR?bar-baz}", "required variable UNSET_VAR is missing a value: bar-baz"),
]


@pytest.mark.parametrize(("template", "message"), ERROR_CASES)
def test_substitute_error(template: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        _sub(template)
    assert message in caught.value.message


def test_invalid_template_message_names_template_and_fix() -> None:
    with pytest.raises(InterpolationError) as caught:
        _sub("${")
    assert caught.value.message == (
        'invalid interpolation format for "${". You may need to escape any $ with another $.'
    )


def test_required_without_reason_has_no_trailing_colon() -> None:
    with pytest.raises(InterpolationError) as caught:
        _sub("${UNSET_VAR?}")
    assert caught.value.message == "required variable UNSET_VAR is missing a value"


WARNING_CASES = [
    # TestLazyDefaultDoesNotWarn, TestLazyDefaultWarnsWhenUsed, TestLazyRequiredMessageDoesNotWarn
    ("${A:+${A},}B", DEFAULTS, "B", []),
    ("${A:-${B}}", DEFAULTS, "", ["B"]),
    ("${A?${B}}", {"A": "value"}, "value", []),
    # TestNoValueNoDefault: a plain unset variable is reported, an empty one is not
    ("This ${missing} var $other", DEFAULTS, "This  var ", ["missing", "other"]),
    ("This ${BAR} var", DEFAULTS, "This  var", []),
]


@pytest.mark.parametrize(("template", "env", "expected", "missing"), WARNING_CASES)
def test_on_missing_reports_only_used_unset_variables(
    template: str, env: dict[str, str], expected: str, missing: list[str]
) -> None:
    seen: list[str] = []
    assert substitute(template, env.get, on_missing=seen.append) == expected
    assert seen == missing


# TestSubstitutionFunctionChoice: which operator applies when several appear in the braces.
# Each operator behaves differently for an unset and an empty VARNAME, so the pair of results
# tells which one was chosen.
CHOICE_CASES = [
    ("VARNAME:?val?ue", ":?"),
    ("VARNAME?val:?ue", "?"),
    ("VARNAME?va-lu+e:?e", "?"),
    ("VARNAME?va+lu-e:?e", "?"),
    ("VARNAME:-value", ":-"),
    ("VARNAME-va:-lu:?e", "-"),
    ("VARNAME-va+lu?e", "-"),
    ("VARNAME-va?lu+e", "-"),
    ("VARNAME:+va:?lu:-e", ":+"),
    ("VARNAME+va:+lue", "+"),
    ("VARNAME+va?lu-e", "+"),
    ("VARNAME+va-lu?e", "+"),
]

_REQUIRED = "error"


def _outcome(template: str, env: dict[str, str]) -> str:
    try:
        return _sub(template, env)
    except InterpolationError:
        return _REQUIRED


@pytest.mark.parametrize(("inner", "operator"), CHOICE_CASES)
def test_substitution_function_choice(inner: str, operator: str) -> None:
    arg = inner.split(operator, 1)[1]
    expected_unset, expected_empty = {
        ":?": (_REQUIRED, _REQUIRED),
        "?": (_REQUIRED, ""),
        ":-": (arg, arg),
        "-": (arg, ""),
        ":+": ("", ""),
        "+": ("", arg),
    }[operator]
    template = "${" + inner + "}"
    assert _outcome(template, {}) == expected_unset
    assert _outcome(template, {"VARNAME": ""}) == expected_empty


def test_brace_counter_quirk_is_kept() -> None:
    # compose-go skips the character after each `{` when looking for the closing brace, so
    # `{}` in a default opens a level that the next `}` closes; a true nesting count would give
    # "{} x}".
    assert _sub("${A:-{}} x}") == "{}} x"


def test_first_error_wins_but_whole_string_is_walked() -> None:
    seen: list[str] = []
    with pytest.raises(InterpolationError) as caught:
        substitute("${A?first} ${B?second} $C", DEFAULTS.get, on_missing=seen.append)
    assert caught.value.message.endswith(": first")
    assert seen == ["C"]


def test_tree_substitutes_values_not_keys() -> None:
    tree = {
        "services": {
            "$FOO": {
                "image": "img:${FOO}",
                "command": ["echo", "$$HOME", "${BAR:-x}"],
                "scale": 2,
                "init": True,
                "env": None,
                "ports": Tagged(Tag.OVERRIDE, ["${FOO}:80"]),
            }
        }
    }
    collector = ProblemCollector()
    out = interpolate_tree(tree, DEFAULTS.get, collector)
    assert not collector
    assert out == {
        "services": {
            "$FOO": {
                "image": "img:first",
                "command": ["echo", "$HOME", "x"],
                "scale": 2,
                "init": True,
                "env": None,
                "ports": Tagged(Tag.OVERRIDE, ["first:80"]),
            }
        }
    }
    assert tree["services"]["$FOO"]["image"] == "img:${FOO}"  # input left alone


def test_tree_reports_each_failure_at_its_path_and_keeps_value() -> None:
    tree = {"services": {"web": {"image": "${", "environment": ["A=${NEED?set it}", "B=$FOO"]}}}
    collector = ProblemCollector()
    seen: list[str] = []
    out = interpolate_tree(tree, DEFAULTS.get, collector, on_missing=seen.append)
    assert out["services"]["web"]["image"] == "${"
    assert out["services"]["web"]["environment"] == ["A=${NEED?set it}", "B=first"]
    assert [(p.path, p.message) for p in collector.problems] == [
        (("services", "web", "image"),
         'invalid interpolation format for "${". You may need to escape any $ with another $.'),
        (("services", "web", "environment", 0), "required variable NEED is missing a value: set it"),
    ]
    assert seen == []


def test_tree_path_prefix_and_missing_callback() -> None:
    collector = ProblemCollector()
    seen: list[str] = []
    out = interpolate_tree({"name": "$NOPE"}, DEFAULTS.get, collector, ("x-root",), on_missing=seen.append)
    assert out == {"name": ""}
    assert seen == ["NOPE"]
    interpolate_tree({"k": "${NOPE:?}"}, DEFAULTS.get, collector, ("x-root",))
    assert collector.problems[0].path == ("x-root", "k")
