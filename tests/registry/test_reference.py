"""References normalise exactly as Docker's `ParseNormalizedNamed` does."""

from __future__ import annotations

import pytest

from stackup.errors import RuntimeFailure
from stackup.registry.errors import InvalidReference
from stackup.registry.reference import Reference, is_digest
from stackup.runtime.engine.images.ref import ImageRef as EngineRef

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "full", "familiar"), [
    ("redis", "docker.io/library/redis:latest", "redis:latest"),
    ("redis:7", "docker.io/library/redis:7", "redis:7"),
    ("library/redis", "docker.io/library/redis:latest", "redis:latest"),
    ("docker.io/redis", "docker.io/library/redis:latest", "redis:latest"),
    ("index.docker.io/library/redis:7", "docker.io/library/redis:7", "redis:7"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1", "localhost:5000/team/app:v1"),
    ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),  # a tag, as in Docker
    ("registry.example.com/app", "registry.example.com/app:latest", "registry.example.com/app:latest"),
    ("Host/app", "Host/app:latest", "Host/app:latest"),  # uppercase first part is a domain
    ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"),
    ("127.0.0.1:5000/a__b/c-d.e:1.0-rc_1", "127.0.0.1:5000/a__b/c-d.e:1.0-rc_1",
     "127.0.0.1:5000/a__b/c-d.e:1.0-rc_1"),
    (f"host:5000/team/app@{DIGEST}", f"host:5000/team/app@{DIGEST}", f"host:5000/team/app@{DIGEST}"),
    (f"redis:7@{DIGEST}", f"docker.io/library/redis:7@{DIGEST}", f"redis:7@{DIGEST}"),
])
def test_normalisation(text: str, full: str, familiar: str) -> None:
    ref = Reference.parse(text)
    assert (ref.full, ref.familiar) == (full, familiar)


def test_digest_wins_for_fetching_and_tag_is_kept() -> None:
    ref = Reference.parse(f"redis:7@{DIGEST}")
    assert ref.tag == "7"
    assert ref.manifest_ref == DIGEST
    assert Reference.parse(f"redis@{DIGEST}").tag is None
    assert Reference.parse("redis", default_tag=False).tag is None


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("Redis", "must be lowercase"),
    ("docker.io/Library/redis", "must be lowercase"),
    ("redis:-bad", "bad tag"),
    ("redis:" + "a" * 129, "bad tag"),
    ("redis@sha256:abc", "expected ALGORITHM:HEX"),
    ("redis@sha256:" + "AB" * 32, "lowercase hex"),
    ("redis@md5:" + "ab" * 16, "unsupported digest algorithm"),
    ("a" * 64, "image id"),
    ("host:5000/app_/x", "repository names"),
    ("bad_host:5000/app", "bad registry host"),
    ("x/" + "a" * 300, "longer than 255"),
])
def test_invalid_references_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason) as caught:
        Reference.parse(text)
    assert isinstance(caught.value, RuntimeFailure)  # the engine catches RuntimeFailure today


@pytest.mark.parametrize("text", [
    "busybox", "busybox:1.36", "stackup-test/busybox:latest", "localhost:5000/a/b:c",
    f"quay.io/org/img@{DIGEST}", "index.docker.io/library/x", "registry.example.com:443/p/q:t",
])
def test_superset_of_the_engine_reference(text: str) -> None:
    ours, engine = Reference.parse(text), EngineRef.parse(text)
    assert (ours.domain, ours.path, ours.tag, ours.digest) == (
        engine.domain, engine.path, engine.tag, engine.digest)
    assert (ours.full, ours.familiar, ours.repository, str(ours)) == (
        engine.full, engine.familiar, engine.repository, str(engine))


def test_with_tag_and_digest() -> None:
    ref = Reference.parse("host:5000/app:1")
    assert ref.with_tag("2").full == "host:5000/app:2"
    assert ref.with_digest(DIGEST).full == f"host:5000/app:1@{DIGEST}"
    with pytest.raises(InvalidReference):
        ref.with_tag("-x")
    assert is_digest(DIGEST) and not is_digest("sha256:xyz")
