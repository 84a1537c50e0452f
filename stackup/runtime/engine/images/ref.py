"""Image references as the engine's store keys them: the registry client's `Reference`.

Users write `busybox`, stack files write `docker.io/library/busybox:latest`; both must find the
same image, so the store keys its tag index by the full form and shows the short one. One parser
for the store and the registry client means a pulled reference is filed under exactly the name
it was pulled by (`stackup.registry.reference` normalises as Docker does).
"""

from __future__ import annotations

import re

from stackup.registry.reference import Reference

ImageRef = Reference

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def is_digest(text: str) -> bool:
    """`sha256:` followed by 64 lowercase hex digits: the only algorithm the store uses."""
    return bool(_DIGEST.match(text))


__all__ = ["ImageRef", "is_digest"]
