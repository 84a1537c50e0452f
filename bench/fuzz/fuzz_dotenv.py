"""Coverage-guided fuzzing of the dotenv parser and of `${...}` substitution with atheris.

The first byte picks the target: even, `parse_dotenv` on the rest (a located `SpecError` or a
mapping); odd, `substitute` on it (text or an `InterpolationError`).

    python bench/fuzz/fuzz_dotenv.py -runs=50000
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["stackup"]):
    from stackup.spec.dotenv import parse_dotenv
    from stackup.spec.errors import SpecError
    from stackup.spec.interpolate import InterpolationError, substitute
    from tests.spec.fuzz_strategies import time_bound

ENV = {"A": "a", "B": "", "TAG": "1.0"}


def test_one_input(data: bytes) -> None:
    if not data:
        return
    text = data[1:].decode("utf-8", "replace")
    with time_bound(5.0):
        if data[0] % 2 == 0:
            try:
                parse_dotenv(text, filename=".env", lookup=ENV.get)
            except SpecError as err:
                assert str(err).startswith(".env"), f"unlocated dotenv error: {err}"
        else:
            with contextlib.suppress(InterpolationError):
                substitute(text, ENV.get)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
