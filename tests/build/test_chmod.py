"""`COPY --chmod` values: octal, and chmod(1)'s symbolic notation checked against coreutils' chmod
on real files (the reference behaviour the Dockerfile frontend follows on Linux)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from stackup.build.chmod import ModeError, parse_chmod

CASES = ["u+x", "+x", "a-w", "go=rX", "u=rwX,go=rX", "g=u", "o=", "u+s", "+t", "u=rw,g+r-w,o-rwx",
         "a=rwx", "ug+X", "o+X", "=r", "g=o", "u-x+w"]
MODES = [0o644, 0o755, 0o600, 0o4755, 0o700, 0o000, 0o1777]


@pytest.mark.parametrize("spec", CASES)
def test_symbolic_modes_match_coreutils_chmod(spec: str, tmp_path: Path) -> None:
    change = parse_chmod(spec)
    for mode in MODES:
        for is_dir in (False, True):
            path = tmp_path / f"e{mode:o}{int(is_dir)}"
            path.mkdir() if is_dir else path.touch()
            os.chmod(path, mode)
            subprocess.run(["chmod", spec, str(path)], check=True)
            expected = stat.S_IMODE(path.stat().st_mode)
            assert change(mode, is_dir) == expected, (spec, oct(mode), is_dir)


def test_octal_is_absolute_and_bad_values_are_refused() -> None:
    assert parse_chmod("0755")(0o600, False) == 0o755 and parse_chmod("644")(0o7777, True) == 0o644
    for bad in ("u+q", "9", "rw", "u+x,", "", "12345", "u+x y"):
        with pytest.raises(ModeError):
            parse_chmod(bad)
