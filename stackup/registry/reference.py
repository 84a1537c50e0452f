"""Image references, normalised exactly as Docker does (distribution's `ParseNormalizedNamed`).

`redis` is `docker.io/library/redis:latest`; `user/app` is `docker.io/user/app:latest`;
`host:5000/team/app@sha256:...` names a registry because its first component has a `.` or a `:`
(or is `localhost`, or has an uppercase letter); `index.docker.io` is folded into `docker.io`.
A reference may carry both a tag and a digest: the digest is what is fetched, the tag is kept for
display, as Docker does. This module is a superset of the engine's `imageref.ImageRef` (same
fields, `parse`, `repository`, `full`, `familiar`, `is_digest`), so the engine can switch to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from stackup.registry.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_DIGEST = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]{32,})")
_HEX_ID = re.compile(r"[a-f0-9]{64}")
# Registered algorithms and the length of their hex encoding (OCI image-spec descriptor.md).
DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


def is_digest(text: str) -> bool:
    """`sha256:` + 64 lowercase hex digits (or sha384/sha512 of their length)."""
    algorithm, _, encoded = text.partition(":")
    size = DIGEST_HEX_LENGTH.get(algorithm)
    return size is not None and len(encoded) == size and bool(_HEX.fullmatch(encoded))


def check_digest(text: str, *, what: str = "digest") -> str:
    """Return `text` if it is a digest this client can verify, else raise with the reason."""
    match = _DIGEST.fullmatch(text)
    if not match:
        raise InvalidReference(f"invalid {what} {text!r}: expected ALGORITHM:HEX (sha256:<64 hex digits>)")
    algorithm, encoded = match.groups()
    size = DIGEST_HEX_LENGTH.get(algorithm)
    if size is None:
        raise InvalidReference(f"unsupported digest algorithm {algorithm!r} in {text!r} (use sha256)")
    if len(encoded) != size or not _HEX.fullmatch(encoded):
        raise InvalidReference(f"invalid {what} {text!r}: {algorithm} needs {size} lowercase hex digits")
    return text


def split_domain(name: str) -> tuple[str, str]:
    """Docker's `splitDockerDomain`: (registry host, repository path), both normalised."""
    first, slash, rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"
                     and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


@dataclass(frozen=True, slots=True)
class Reference:
    """`domain/path[:tag][@digest]`; a reference with neither tag nor digest gets `latest`."""

    domain: str
    path: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: bool = True) -> Reference:
        """Parse what a user or stack file wrote; `default_tag=False` leaves a bare name untagged."""
        if not text:
            raise InvalidReference("invalid reference format: the image name is empty")
        if _HEX_ID.fullmatch(text):
            raise InvalidReference(
                f"invalid repository name {text!r}: 64 hex digits look like an image id, not a name")
        name, at, digest = text.partition("@")
        if at:
            check_digest(digest, what="digest")
        tag: str | None = None
        colon = name.rfind(":")
        if colon > name.rfind("/"):
            name, tag = name[:colon], name[colon + 1:]
            if not _TAG.fullmatch(tag):
                raise InvalidReference(
                    f"invalid reference {text!r}: bad tag {tag!r} (letters, digits, _ . -; at most 128, "
                    "not starting with . or -)")
        domain, path = split_domain(name)
        if path.lower() != path:
            raise InvalidReference(f"invalid reference {text!r}: repository name {path!r} must be lowercase")
        if not _DOMAIN.fullmatch(domain):
            raise InvalidReference(f"invalid reference {text!r}: bad registry host {domain!r}")
        if not _PATH.fullmatch(path):
            raise InvalidReference(
                f"invalid reference {text!r}: repository names are lowercase letters, digits and "
                "separators (. _ __ -) joined by /")
        if len(domain) + 1 + len(path) > MAX_NAME_LENGTH:
            raise InvalidReference(
                f"invalid reference {text!r}: repository name is longer than {MAX_NAME_LENGTH} characters")
        if tag is None and not at and default_tag:
            tag = DEFAULT_TAG
        return cls(domain, path, tag, digest or None)

    @property
    def repository(self) -> str:
        """`docker.io/library/redis`: the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def full(self) -> str:
        """The canonical form, used as the key for matching."""
        return self.repository + self._suffix()

    @property
    def familiar_name(self) -> str:
        """`redis`, `user/app`, `host:5000/team/app`: what Docker shows."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        rest = self.path.removeprefix(OFFICIAL_PREFIX)
        return rest if "/" not in rest else self.path

    @property
    def familiar(self) -> str:
        """The short form users write: `busybox:latest`, `stackup-test/busybox:latest`."""
        return self.familiar_name + self._suffix()

    @property
    def manifest_ref(self) -> str:
        """What goes after `/manifests/`: the digest if pinned (the tag is then informative)."""
        ref = self.digest or self.tag
        if ref is None:
            raise InvalidReference(f"{self.repository} has neither a tag nor a digest")
        return ref

    def with_tag(self, tag: str) -> Reference:
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid tag {tag!r} for {self.repository}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=check_digest(digest))

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.familiar


ImageRef = Reference
"""The engine's name for the same thing (`stackup.runtime.engine.images.ref.ImageRef`)."""
