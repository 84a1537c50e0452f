"""Masking of `environment` values marked secret: which values, and how text is masked."""

from __future__ import annotations

from stackup.spec.secretenv import MASK, Masker, mask_canonical, values_from_config


def test_config_masks_marked_keys_whatever_their_length() -> None:
    data = {"services": {"a": {"environment": {"K": "1", "P": "plain"}, "x-stackup-secret": ["K"]},
                         "b": {"environment": {"K": "1"}}}}  # fmt: skip
    masked = mask_canonical(data)
    assert masked["services"]["a"]["environment"] == {"K": MASK, "P": "plain"}
    assert masked["services"]["b"]["environment"] == {"K": "1"}  # not marked there
    assert data["services"]["a"]["environment"]["K"] == "1"  # the input is left alone


def test_masker_replaces_longest_first_and_skips_short_values() -> None:
    masker = Masker(["abcd", "abcdef", "xy"])
    assert masker.text("abcdef abcd xy") == f"{MASK} {MASK} xy"
    assert masker.data(b"=abcdef=") == f"={MASK}=".encode()
    assert not Masker(["ab"])


def test_container_values_come_from_its_config_and_environment() -> None:
    config = {"x-stackup-secret": "TOKEN", "environment": {"TOKEN": "from-file", "OTHER": "o"}}
    found = values_from_config(config, {"TOKEN": "from-env-file", "OTHER": "x"})
    assert found == {"from-file", "from-env-file"}
    assert values_from_config({"environment": {"TOKEN": "t"}}, {"TOKEN": "t"}) == frozenset()
