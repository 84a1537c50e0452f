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
        self.masker = masker

    def write(self, data: bytes) -> int:
        self._inner.write(self.masker.data(bytes(data)))
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _MaskedText:
    def __init__(self, inner: IO[str], masker: Masker) -> None:
        self._inner = inner
        self.masker = masker
        self.buffer = _MaskedBuffer(inner.buffer, masker) if hasattr(inner, "buffer") else None

    def mask_also(self, values: Iterable[str]) -> None:
        self.masker = Masker({*self.masker.values, *values})
        if self.buffer is not None:
            self.buffer.masker = self.masker

    def write(self, text: str) -> int:
        self._inner.write(self.masker.text(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def install(values: Iterable[str]) -> None:
    """Mask `values` in stdout and stderr from now on (on top of what an earlier call masks)."""
    masker = Masker(values)
    if not masker:
        return
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, _MaskedText):
            stream.mask_also(masker.values)
        else:
            setattr(sys, name, _MaskedText(stream, masker))
