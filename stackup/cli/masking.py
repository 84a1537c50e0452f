"""Secret values masked in everything this process prints.

The CLI's stdout and stderr (and their binary buffers, which `logs`, `exec` and `cp` write to)
are wrapped once the values are known, so no printing path (rich consoles, progress lines,
JSON dumps, a container's log lines) can show them: one choke point rather than a mask at each
of dozens of `write` calls. A value split across two writes is not caught; every printer here
writes whole lines.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from stackup.spec.secretenv import Masker


class _MaskedBuffer:
    def __init__(self, inner: IO[bytes], masker: Masker) -> None:
        self._inner = inner
        self._masker = masker

    def write(self, data: bytes) -> int:
        self._inner.write(self._masker.data(bytes(data)))
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _MaskedText:
    def __init__(self, inner: IO[str], masker: Masker) -> None:
        self._inner = inner
        self._masker = masker
        self.buffer = _MaskedBuffer(inner.buffer, masker) if hasattr(inner, "buffer") else None

    def write(self, text: str) -> int:
        self._inner.write(self._masker.text(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_installed: list[str] = []


def install(values: Iterable[str]) -> None:
    """Mask `values` in stdout and stderr from now on (adds to what an earlier call masks)."""
    wanted = set(values) - set(_installed)
    masker = Masker(wanted)
    if not masker:
        return
    _installed.extend(masker.values)
    sys.stdout = _MaskedText(sys.stdout, masker)
    sys.stderr = _MaskedText(sys.stderr, masker)
