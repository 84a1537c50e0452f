"""Errors of the registry client, each one line that names the image and says what to do.

    RuntimeFailure (stackup.errors)
    └── RegistryError               anything the registry client refuses or fails at
        ├── InvalidReference        an image reference or platform string that cannot be parsed
        ├── RegistryUnreachable     connection refused, DNS, TLS handshake, timeout
        ├── AuthenticationRequired  401: no or wrong credentials
        ├── AccessDenied            403 / DENIED: the credentials may not do this
        ├── DigestMismatch          a blob or manifest did not hash to what was asked for
        ├── UnsupportedManifest     a media type or platform this client cannot use
        └── ManifestUnknown         also a NotFound: the tag, digest or repository does not exist
"""

from __future__ import annotations

from stackup.errors import NotFound, RuntimeFailure


class RegistryError(RuntimeFailure):
    """Root of the registry client's errors; `image` names what was being pulled or pushed."""

    def __init__(self, message: str, *, image: str = "") -> None:
        super().__init__(f"{image}: {message}" if image else message)
        self.image = image


class InvalidReference(RegistryError):
    """A reference (`name[:tag][@digest]`) or `platform:` string is malformed."""


class RegistryUnreachable(RegistryError):
    """The registry did not answer (or its TLS certificate was not trusted)."""


class AuthenticationRequired(RegistryError):
    """The registry wants credentials we do not have, or rejected the ones we sent."""


class AccessDenied(RegistryError):
    """The registry knows who we are and says no."""


class DigestMismatch(RegistryError):
    """Content did not hash to its digest; nothing of it was kept."""


class UnsupportedManifest(RegistryError):
    """A manifest we cannot use: unknown media type, schema 1, or no manifest for this platform."""


class ManifestUnknown(RegistryError, NotFound):
    """The tag, digest or repository does not exist in the registry."""


def describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS certificate not trusted (" + text.rsplit(":", 1)[-1].strip(" )") + ")"
    return text
