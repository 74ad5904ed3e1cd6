"""Artefact tags: what start_clip and remove_tagged accept, and how a name is matched."""

from __future__ import annotations

import pytest

from shared.vms.base import carries_tag, check_tag


@pytest.mark.parametrize("tag", ["clr-3f9a1c2b7d", "a", "0", "x" * 24, "clr-" + "0" * 20])
def test_a_well_formed_tag_is_accepted(tag):
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-clr", "Clr-1", "clr 1", "clr_1", "x" * 25, "clr-1\n", "clr/1", None])
def test_a_malformed_tag_is_refused(tag):
    with pytest.raises(ValueError):
        check_tag(tag)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Clearance 2026-12-02 07-00-00Z clr-1 1a2b3c4d", True),
        ("Clearance 2026-12-02 07-00-00Z clr-1 1a2b3c4d 2026-12-02 07-00-00.mp4", True),
        ("Clearance 2026-12-02 07:00:00Z clr-1", True),
        ("Clearance 2026-12-02 07:00:00Z clr-12", False),  # another tag that merely starts the same
        ("Clearance xclr-1", False),
        ("", False),
        (None, False),
    ],
)
def test_a_name_carries_a_tag_only_as_a_word_of_its_own(name, expected):
    assert carries_tag(name, "clr-1") is expected
