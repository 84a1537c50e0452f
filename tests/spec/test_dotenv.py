"""`.env` parsing, ported case for case from compose-go `dotenv/godotenv_test.go`.

The fixtures in tests/fixtures/dotenv/ are byte-identical copies of compose-go's
`dotenv/fixtures`. Upstream tests that check how godotenv writes into the process environment
(Load not overriding, TestActualEnvVarsAreLeftAlone, the `.env` default name) have no
counterpart: stackup never mutates os.environ.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.spec.dotenv import load_env_files, parse_dotenv, read_dotenv
from stackup.spec.errors import Location, SpecError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dotenv"
OS_VAR = "VAR_TO_BE_LOADED_FROM_OS_ENV"

PLAIN = {
    "OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "3", "OPTION_D": "4", "OPTION_E": "5",
    "OPTION_F": "", "OPTION_G": "", "OPTION_H": "my string",
    # compose-go's Read() drops keys starting with a digit, but Compose itself reads env files
    # through GetEnvFromFile / ParseWithFormat, which keep them; so do we.
    "456": "ABC",
}

FIXTURE_CASES = [
    # TestReadPlainEnv, TestLoadPlainEnv
    pytest.param("plain.env", {}, PLAIN, id="plain"),
    # TestUTF8BOM
    pytest.param("utf8-bom.env", {}, PLAIN, id="utf8-bom"),
    # TestLoadExportedEnv
    pytest.param("exported.env", {}, {"OPTION_A": "2", "OPTION_B": "\\n"}, id="exported"),
    # TestLoadEqualsEnv
    pytest.param("equals.env", {},
                 {"OPTION_A": "postgres://localhost:5432/database?sslmode=disable"}, id="equals"),
    # TestLoadQuotedEnv
    pytest.param("quoted.env", {}, {
        "OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "", "OPTION_D": "\\n", "OPTION_E": "1",
        "OPTION_F": "2", "OPTION_G": "", "OPTION_H": "\n", "OPTION_I": "echo 'asd'",
        "OPTION_J": "first line\nsecond line\nthird line\nand so on",
        "OPTION_K": "Let's go!", "OPTION_Z": "last value",
    }, id="quoted"),
    # TestLoadUnquotedEnv
    pytest.param("unquoted.env", {}, {
        "OPTION_A": "some quoted phrase",
        "OPTION_B": "first one with an unquoted phrase",
        "OPTION_C": "then another one with an unquoted phrase",
        "OPTION_D": "then another one with an unquoted phrase special è char",
        "OPTION_E": "then another one quoted phrase",
    }, id="unquoted"),
    # TestSubstitutions, TestSubstitutionsWithEnvFilePrecedence (the lookup beats the file)
    pytest.param("substitutions.env", {}, {
        "OPTION_A": "1", "OPTION_B": "1", "OPTION_C": "1", "OPTION_D": "1_1", "OPTION_E": "",
    }, id="substitutions"),
    pytest.param("substitutions.env", {"OPTION_A": "5"}, {
        "OPTION_A": "1", "OPTION_B": "5", "OPTION_C": "5", "OPTION_D": "5_5", "OPTION_E": "",
    }, id="substitutions-lookup-precedence"),
    # TestSubstitutionsWithEnvFileDefaultValuePrecedence, ...WithUnsetVar...
    pytest.param("substitutions-default.env", {"OPTION_A": "5"}, {
        "OPTION_A": "5", "OPTION_B": "5", "OPTION_C": "5", "OPTION_D": "5_5", "OPTION_E": "",
    }, id="substitutions-default-set"),
    pytest.param("substitutions-default.env", {}, {
        "OPTION_A": "1", "OPTION_B": "1", "OPTION_C": "1", "OPTION_D": "1_1", "OPTION_E": "",
    }, id="substitutions-default-unset"),
    # TestDash
    pytest.param("special.env", {}, {
        "VAR-WITH-DASHES": "dashes", "VAR.WITH.DOTS": "dots", "VAR_WITH_UNDERSCORES": "underscores",
    }, id="special"),
    # TestInheritedEnvVariableSameSize, TestInheritedEnvVariableSingleVar
    pytest.param("inherited-multi-var.env", {OS_VAR: "SOME_RANDOM_VALUE"},
                 {OS_VAR: "SOME_RANDOM_VALUE", "foo": "bar", "bar": "baz"}, id="inherited-multi"),
    pytest.param("inherited-single-var.env", {OS_VAR: "SOME_RANDOM_VALUE"},
                 {OS_VAR: "SOME_RANDOM_VALUE"}, id="inherited-single"),
    # TestInheritedEnvVariableNotFound
    pytest.param("inherited-not-found.env", {}, {}, id="inherited-not-found"),
    # TestLoadWithFormat: upstream registers a custom `KEY:VALUE` format; the default parser's
    # YAML-style form reads the same file to the same values.
    pytest.param("custom.format", {}, {"FOO": "BAR", "ZOT": "QIX"}, id="custom-format"),
]


@pytest.mark.parametrize(("name", "env", "expected"), FIXTURE_CASES)
def test_fixture(name: str, env: dict[str, str], expected: dict[str, str]) -> None:
    assert read_dotenv(FIXTURES / name, env.get) == expected


def test_utf8_bom_fixture_really_has_a_bom() -> None:
    assert (FIXTURES / "utf8-bom.env").read_bytes().startswith(b"\xef\xbb\xbf")


def test_inherited_not_found_asks_the_lookup() -> None:
    # TestInheritedEnvVariableNotFoundWithLookup
    asked: list[str] = []

    def lookup(name: str) -> str | None:
        asked.append(name)
        return None

    assert read_dotenv(FIXTURES / "inherited-not-found.env", lookup) == {}
    assert asked == ["VARIABLE_NOT_FOUND"]


def test_invalid_fixture_is_located() -> None:
    # TestErrorParsing: "line 7: key cannot contain a space"
    with pytest.raises(SpecError) as caught:
        read_dotenv(FIXTURES / "invalid1.env")
    (problem,) = caught.value.problems
    assert problem.location == Location(str(FIXTURES / "invalid1.env"), 7, 1)
    assert problem.message == 'key "INVALID LINE" cannot contain a space'


def test_missing_file() -> None:
    # TestLoadFileNotFound
    path = FIXTURES / "somefilethatwillneverexistever.env"
    with pytest.raises(SpecError, match=f"env file {path} not found"):
        read_dotenv(path)


def test_directory() -> None:
    # TestErrorReadDirectory, TestGetEnvFromFile
    with pytest.raises(SpecError, match="is a directory"):
        read_dotenv(FIXTURES)
    with pytest.raises(SpecError, match="is a directory"):
        load_env_files([FIXTURES], {})


def test_multiple_files(tmp_path: Path) -> None:
    # TestMultipleFiles: the shell wins inside ${...}, then the files' own keys, later ones last
    base = tmp_path / "base.env"
    base.write_text('\nENV_HOSTNAME=localhost\nENV_MY_URL="http://${ENV_HOSTNAME}"\n')
    override = tmp_path / "override.env"
    override.write_text('\nENV_HOSTNAME=dev.my-company.com\nENV_MY_URL="http://${ENV_HOSTNAME}"\n')
    assert load_env_files([base, override], {}) == {
        "ENV_HOSTNAME": "dev.my-company.com", "ENV_MY_URL": "http://dev.my-company.com",
    }
    assert load_env_files([base, override], {"ENV_HOSTNAME": "host.local"}) == {
        "ENV_HOSTNAME": "dev.my-company.com", "ENV_MY_URL": "http://host.local",
    }


PARSING_CASES = [
    # TestParse
    ("ONE=1\nTWO='2'\nTHREE = \"3\"", "ONE", "1"),
    ("ONE=1\nTWO='2'\nTHREE = \"3\"", "TWO", "2"),
    ("ONE=1\nTWO='2'\nTHREE = \"3\"", "THREE", "3"),
    # TestExpanding
    ("FOO=test\nBAR=$FOO", "BAR", "test"),
    ("FOO=test\nBAR=${FOO}bar", "BAR", "testbar"),
    ("BAR=$FOO", "BAR", ""),
    ('FOO=test\nBAR="quote $FOO"', "BAR", "quote test"),
    ("BAR='quote $FOO'", "BAR", "quote $FOO"),
    ('FOO="foo\\$BAR"', "FOO", "foo$BAR"),
    ('FOO="foo\\${BAR}"', "FOO", "foo${BAR}"),
    ('FOO=test\nBAR="foo\\${FOO} ${FOO}"', "BAR", "foo${FOO} test"),
    # TestVariableStringValueSeparator
    ('TEST_URLS="stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"',
     "TEST_URLS", "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"),
    # TestParsing
    ("FOO=bar", "FOO", "bar"),
    ("FOO =bar", "FOO", "bar"),
    ("FOO= bar", "FOO", "bar"),
    ('FOO="bar"', "FOO", "bar"),
    ("FOO='bar'", "FOO", "bar"),
    ('FOO="escaped\\"bar"', "FOO", 'escaped"bar'),
    ('FOO="\\"quoted\\""', "FOO", '"quoted"'),
    ("FOO=\"'d'\"", "FOO", "'d'"),
    ("OPTION_A: 1", "OPTION_A", "1"),
    ("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar"),
    ("OPTION_A=1:B", "OPTION_A", "1:B"),
    ("export OPTION_A=2", "OPTION_A", "2"),
    ("export OPTION_B='\\n'", "OPTION_B", "\\n"),
    ("export exportFoo=2", "exportFoo", "2"),
    ("exportFOO=2", "exportFOO", "2"),
    ("export_FOO =2", "export_FOO", "2"),
    ("export.FOO= 2", "export.FOO", "2"),
    ("export\tOPTION_A=2", "OPTION_A", "2"),
    ("  export OPTION_A=2", "OPTION_A", "2"),
    ("\texport OPTION_A=2", "OPTION_A", "2"),
    ('export OPTION_A="export A"', "OPTION_A", "export A"),
    ('FOO="bar\\nbaz"', "FOO", "bar\nbaz"),
    ("FOO=a\\tb", "FOO", "a\\tb"),
    ('FOO="a\\tb"', "FOO", "a\tb"),
    ('KEY="Z\\aZ\\bZ\\fZ\\nZ\\rZ\\tZ\\vZ\\\\Z\\0123Z"', "KEY", "Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\ZSZ"),
    ("FOO.BAR=foobar", "FOO.BAR", "foobar"),
    ("FOO=foobar=", "FOO", "foobar="),
    ("FOO=bar ", "FOO", "bar"),
    ("FOO=bar # this is foo", "FOO", "bar"),
    ("FOO=bar #this is foo", "FOO", "bar"),
    ("FOO=bar #", "FOO", "bar"),
    ("FOO=123#not-an-inline-comment", "FOO", "123#not-an-inline-comment"),
    ('FOO="bar#baz"', "FOO", "bar#baz"),
    ('FOO="bar#baz"#', "FOO", "bar#baz"),
    ('FOO="bar#baz" # comment', "FOO", "bar#baz"),
    ("FOO='bar#baz' # comment", "FOO", "bar#baz"),
    ('FOO="bar#baz#bang" # comment', "FOO", "bar#baz#bang"),
    ('FOO="ba#r"', "FOO", "ba#r"),
    ("FOO='ba#r'", "FOO", "ba#r"),
    ('FOO="bar\\n\\ b\\az"', "FOO", "bar\n\\ b\az"),
    ('FOO="bar\\\\\\n\\ b\\az"', "FOO", "bar\\\n\\ b\az"),
    ('FOO="bar\\\\r\\ b\\az"', "FOO", "bar\\r\\ b\az"),
    ('FOO="bar\\nbaz\\\\"', "FOO", "bar\nbaz\\"),
    ('="value"', "", "value"),
    (" KEY =value", "KEY", "value"),
    ("   KEY=value", "KEY", "value"),
    ("\tKEY=value", "KEY", "value"),
    ('KEY="\\0123"', "KEY", "S"),
    ('KEY="\\x07"', "KEY", "\\x07"),
    ('KEY="\\u12e4"', "KEY", "\\u12e4"),
    ('KEY="\\U00101234"', "KEY", "\\U00101234"),
    # TestLinesToIgnore ("non-ignored value")
    ("export OPTION_B='\\n'", "OPTION_B", "\\n"),
]


@pytest.mark.parametrize(("text", "key", "value"), PARSING_CASES)
def test_parsing(text: str, key: str, value: str) -> None:
    assert parse_dotenv(text)[key] == value


def test_expanding_with_lookup() -> None:
    # TestExpandingEnvironmentWithLookup
    assert parse_dotenv("TEST=$ME", lookup={"ME": "YES"}.get) == {"TEST": "YES"}


@pytest.mark.parametrize("text", ["\n", "\r\n", "\t\t ", "# Comment", "\t # comment"])
def test_lines_to_ignore(text: str) -> None:
    # TestLinesToIgnore
    assert parse_dotenv(text) == {}


@pytest.mark.parametrize("text", [
    'KEY="', 'KEY="value', 'KEY="value\\"', "KEY=\"value'",
    "KEY='", "KEY='value", "KEY='value\\'", "KEY='value\"",
])
def test_unterminated_quotes(text: str) -> None:
    # TestUnterminatedQuotes
    with pytest.raises(SpecError, match="unterminated quoted value") as caught:
        parse_dotenv(text, filename="x.env")
    assert caught.value.problems[0].location == Location("x.env", 1, 5)


def test_badly_formatted_line_is_located() -> None:
    # TestParsing: 'lol$wut' must be an error
    with pytest.raises(SpecError) as caught:
        parse_dotenv("A=1\n\n  lol$wut\n", filename=".env")
    (problem,) = caught.value.problems
    assert str(problem) == '.env:3:6: unexpected character "$" in variable name "lol$wut"'


# Beyond upstream's tests: line endings, locations, the documented deviations, bad files.

def test_crlf_line_endings() -> None:
    text = 'A=1\r\nB = two words # note\r\nC="x"\r\nD\r\n# c\r\nE=\'y\'\r\n'
    assert parse_dotenv(text, lookup={"D": "d"}.get) == {"A": "1", "B": "two words", "C": "x",
                                                          "D": "d", "E": "y"}


def test_bare_key_on_last_line_without_newline_is_inherited() -> None:
    # compose-go yields {"": "KEY"} here; stackup treats it like any other bare key.
    assert parse_dotenv("A=1\nKEY", lookup={"KEY": "v"}.get) == {"A": "1", "KEY": "v"}
    assert parse_dotenv("A=1\nKEY") == {"A": "1"}
    assert parse_dotenv("KEY", lookup={"KEY": ""}.get) == {"KEY": ""}


def test_text_after_closing_quote_starts_a_new_statement() -> None:
    assert parse_dotenv('A="x" B=2\n') == {"A": "x", "B": "2"}


def test_interpolation_error_is_located_at_the_value() -> None:
    with pytest.raises(SpecError) as caught:
        parse_dotenv('A=1\nB = "${NEED:?set NEED}"\n', filename="app.env")
    assert str(caught.value) == "app.env:2:5: required variable NEED is missing a value: set NEED"
    with pytest.raises(SpecError, match="invalid interpolation format") as caught:
        parse_dotenv("A=${\n", filename="app.env")
    assert caught.value.problems[0].location == Location("app.env", 1, 3)


def test_single_quotes_are_literal_and_octal_escapes_need_three_digits() -> None:
    assert parse_dotenv("A='${X:?no} \\t $$'") == {"A": "${X:?no} \\t $$"}
    assert parse_dotenv('A="\\012|\\0|\\0101|\\0400|$$"') == {"A": "\\012|\\0|A|\\0400|$"}


def test_on_missing_hears_unset_variables() -> None:
    seen: list[str] = []
    env = parse_dotenv("A=$X\nB=${A:-$Y}\nC='$Z'\n", on_missing=seen.append)
    assert env == {"A": "", "B": "", "C": "$Z"}
    assert seen == ["X", "Y"]


@pytest.mark.parametrize(("content", "message"), [
    (b"\x7fELF\x02\x01\x01\x00\x00", "contains NUL bytes"),
    (b"A=caf\xe9\n", "is not UTF-8 text"),
])
def test_binary_files_are_rejected(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "blob.env"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=message) as caught:
        read_dotenv(path)
    assert caught.value.problems[0].location == Location(str(path))
