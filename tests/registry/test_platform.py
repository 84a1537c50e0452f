"""Platform strings and the choice of an index entry, as containerd (and so Docker) make it."""

from __future__ import annotations

import platform as host

import pytest

from stackup.registry.errors import InvalidReference
from stackup.registry.platform import Platform, host_platform, select


@pytest.mark.parametrize(("text", "expected"), [
    ("linux/amd64", Platform("linux", "amd64", "")),
    ("linux/x86_64", Platform("linux", "amd64", "")),
    ("linux/amd64/v1", Platform("linux", "amd64", "")),
    ("linux/arm64", Platform("linux", "arm64", "v8")),
    ("linux/aarch64", Platform("linux", "arm64", "v8")),
    ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
    ("linux/arm", Platform("linux", "arm", "v7")),
    ("linux/arm/6", Platform("linux", "arm", "v6")),
    ("linux/armhf", Platform("linux", "arm", "v7")),
    ("Linux/AMD64", Platform("linux", "amd64", "")),
    ("arm64", Platform("linux", "arm64", "v8")),
    ("windows/amd64", Platform("windows", "amd64", "")),
])
def test_parse_normalises(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected


def test_os_alone_means_this_machine_architecture() -> None:
    assert Platform.parse("linux") == host_platform()
    assert host_platform().architecture == {"x86_64": "amd64", "aarch64": "arm64"}.get(
        host.machine(), host_platform().architecture)


@pytest.mark.parametrize("text", ["", "linux/", "/amd64", "a/b/c/d", "plan10/amd64", "toaster"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(InvalidReference, match="platform"):
        Platform.parse(text)


def test_str_is_the_short_form() -> None:
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64"
    assert str(Platform.parse("linux/arm/v6")) == "linux/arm/v6"


ENTRIES = [
    (Platform.parse("linux/amd64"), "amd64"),
    (Platform.parse("linux/arm/v5"), "armv5"),
    (Platform.parse("linux/arm/v6"), "armv6"),
    (Platform.parse("linux/arm64"), "arm64"),
    (Platform.parse("windows/amd64"), "win"),
]


@pytest.mark.parametrize(("wanted", "chosen"), [
    ("linux/amd64", "amd64"),
    ("linux/arm64/v8", "arm64"),
    ("linux/arm/v7", "armv6"),  # v7 runs v6 (preferred over v5)
    ("linux/arm/v6", "armv6"),
    ("linux/arm/v5", "armv5"),
    ("windows/amd64", "win"),
    ("linux/amd64/v3", "amd64"),
    ("linux/s390x", None),
])
def test_select_prefers_the_closest_runnable_variant(wanted: str, chosen: str | None) -> None:
    assert select(ENTRIES, Platform.parse(wanted)) == chosen


def test_entries_without_platform_are_a_last_resort() -> None:
    assert select([(None, "any"), (Platform.parse("linux/amd64"), "x")], Platform.parse("linux/amd64")) == "x"
    assert select([(None, "any")], Platform.parse("linux/s390x")) == "any"
    # an amd64/v3 image does not run on a plain amd64 machine
    assert select([(Platform.parse("linux/amd64/v3"), "v3")], Platform.parse("linux/amd64")) is None
