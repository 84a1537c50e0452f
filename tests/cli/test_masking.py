"""The CLI's output streams mask secret values on every path: text, bytes, repeated installs."""

from __future__ import annotations

import sys

import pytest

from stackup.cli import masking
from stackup.spec.secretenv import MASK


def test_installed_values_never_reach_the_terminal(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    saved = sys.stdout, sys.stderr
    try:
        masking.install(["first-secret"])
        masking.install(["second-secret", "no"])  # adds to the first; too short to mask in text
        print("a first-secret b second-secret c no")
        sys.stderr.write("error: first-secret\n")
        sys.stdout.buffer.write(b"raw second-secret\n")
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdout, sys.stderr = saved
    out, err = capfdbinary.readouterr()
    assert out.decode().splitlines() == [f"a {MASK} b {MASK} c no", f"raw {MASK}"]
    assert err.decode() == f"error: {MASK}\n"
