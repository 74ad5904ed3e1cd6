"""The simulated footage format: sizes, sub-windows and the reader that the Registry simulator trusts."""

from __future__ import annotations

import pytest

from devstack.footage import (
    FootageReader,
    camera_tag,
    footage,
    footage_size,
    jpeg_comment,
    read_jpeg_comment,
)


def _read(chunks, piece: int = 7777):
    reader = FootageReader()
    data = b"".join(chunks)
    for offset in range(0, len(data), piece):
        reader.feed(data[offset : offset + piece])
    return reader.result(), data


@pytest.mark.parametrize(("start", "end"), [(0, 1), (500, 1500), (1000, 4000), (1234, 98_765), (999, 1001)])
def test_size_formula_matches_the_generated_bytes(start: int, end: int) -> None:
    assert footage_size(start, end, 450) == sum(len(f) for f in footage("cam", start, end, 450))


def test_a_sub_window_is_the_same_bytes_as_that_part_of_a_longer_window() -> None:
    whole = b"".join(footage("cam", 10_000, 20_000, 450))
    part = b"".join(footage("cam", 12_000, 15_000, 450))
    offset = footage_size(10_000, 12_000, 450)
    assert whole[offset : offset + len(part)] == part


def test_the_reader_identifies_camera_and_exact_window() -> None:
    identity, _ = _read(footage("cam-7", 1_700_000_000_250, 1_700_000_009_900, 900))
    assert identity.describes("cam-7", 1_700_000_000_250, 1_700_000_009_900) == ""
    assert "another" not in identity.describes("cam-8", 1_700_000_000_250, 1_700_000_009_900)
    assert identity.describes("cam-8", 1_700_000_000_250, 1_700_000_009_900) != ""
    assert "reported as" in identity.describes("cam-7", 1_700_000_000_000, 1_700_000_009_900)


def test_the_reader_rejects_gaps_other_cameras_filler_and_truncation() -> None:
    gap, _ = _read([*footage("c", 0, 3000, 100), *footage("c", 4000, 6000, 100)])
    assert "not where the previous ended" in gap.describes("c", 0, 6000)
    mixed, _ = _read([*footage("c", 0, 3000, 100), *footage("d", 3000, 6000, 100)])
    assert "another camera" in mixed.describes("c", 0, 6000)
    filler, _ = _read([*footage("c", 0, 3000, 100), *footage("c", 3000, 6000, 100, filler=True)])
    assert "placeholders" in filler.describes("c", 0, 6000)
    _, data = _read(footage("c", 0, 3000, 100))
    reader = FootageReader()
    reader.feed(data[:-1])
    assert "truncated" in reader.result().describes("c", 0, 3000)
    junk = FootageReader()
    junk.feed(b"\x00" * 100)
    assert "not simulated footage" in junk.result().describes("c", 0, 3000)


def test_snapshot_comment_round_trip() -> None:
    image = b"\xff\xd8\xff\xfe" + jpeg_comment("cam", 1234) + b"\xff\xd9"
    assert read_jpeg_comment(image) == (camera_tag("cam"), 1234)
    assert read_jpeg_comment(b"\xff\xd8\xff\xd9") is None
