"""Image references, normalised the way Docker does (distribution's `ParseNormalizedNamed`).

Users write `busybox`, stack files write `docker.io/library/busybox:latest`; both must find the
same image, so the store keys its tag index by the full form and shows the short one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stackup.errors import RuntimeFailure

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$")
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])"
                     r"(?::[0-9]+)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def is_digest(text: str) -> bool:
    """`sha256:` followed by 64 lowercase hex digits: the only algorithm the store uses."""
    return bool(_DIGEST.match(text))


@dataclass(frozen=True, slots=True)
class ImageRef:
    """`domain/path[:tag][@digest]`; a reference with neither tag nor digest gets `latest`."""

    domain: str
    path: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        name, _, digest = text.partition("@")
        if digest and not is_digest(digest):
            raise RuntimeFailure(f"invalid reference {text!r}: bad digest {digest!r}")
        tag: str | None = None
        colon = name.rfind(":")
        if colon > name.rfind("/"):
            name, tag = name[:colon], name[colon + 1:]
            if not _TAG.match(tag):
                raise RuntimeFailure(f"invalid reference {text!r}: bad tag {tag!r}")
        first, slash, rest = name.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
            if not _DOMAIN.match(first):
                raise RuntimeFailure(f"invalid reference {text!r}: bad registry {first!r}")
            domain, path = first, rest
        else:
            domain, path = DEFAULT_DOMAIN, name
        if domain == "index.docker.io":
            domain = DEFAULT_DOMAIN
        if domain == DEFAULT_DOMAIN and "/" not in path:
            path = OFFICIAL_PREFIX + path
        if not _PATH.match(path):
            raise RuntimeFailure(
                f"invalid reference {text!r}: repository names are lowercase letters, digits and "
                "separators (. _ __ -) joined by /")
        if tag is None and not digest:
            tag = DEFAULT_TAG
        return cls(domain, path, tag, digest or None)

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def full(self) -> str:
        """The canonical form, used as the key for matching."""
        return self.repository + self._suffix()

    @property
    def familiar(self) -> str:
        """The short form users write: `busybox:latest`, `stackup-test/busybox:latest`."""
        if self.domain != DEFAULT_DOMAIN:
            name = self.repository
        else:
            name = self.path
            if name.startswith(OFFICIAL_PREFIX) and "/" not in name[len(OFFICIAL_PREFIX):]:
                name = name[len(OFFICIAL_PREFIX):]
        return name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.familiar
