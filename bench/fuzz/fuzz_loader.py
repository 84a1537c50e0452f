"""Coverage-guided fuzzing of the stack loader with atheris (libFuzzer).

One input is up to three files separated by two NUL bytes: `compose.yaml`, then
`compose.override.yaml`, then `.env`. The property is `tests/spec/fuzz_strategies.check_load`:
a project or a `StackupError`, nothing else, within ten seconds. libFuzzer's own flags apply:

    python bench/fuzz/fuzz_loader.py -runs=20000 -dict=bench/fuzz/compose.dict [CORPUS_DIR ...]

A crash (any other exception, a hang, more than -rss_limit_mb of memory) stops the run and
leaves the input in `crash-*`; replay it with `python bench/fuzz/fuzz_loader.py crash-...`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["stackup"]):
    import stackup.spec.loader  # noqa: F401  (load is re-exported lazily: instrument it now)
    from tests.spec.fuzz_strategies import check_load

SEPARATOR = b"\x00\x00"
NAMES = ("compose.yaml", "compose.override.yaml", ".env")


def split(data: bytes) -> dict[str, str | bytes]:
    """The files one input stands for (empty trailing parts are left out)."""
    parts = data.split(SEPARATOR, len(NAMES) - 1)
    files: dict[str, str | bytes] = {NAMES[0]: parts[0]}
    files.update({name: part for name, part in zip(NAMES[1:], parts[1:], strict=False) if part})
    return files


def test_one_input(data: bytes) -> None:
    check_load(split(data))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
