"""Verkada's HLS playlists placed on the wall clock: gaps are found, never assumed away."""

from __future__ import annotations

import pytest

from shared.vms.errors import VmsVendorError
from shared.vms.verkada.hls import parse_playlist, runs, seconds_to_us

BASE = "https://api.verkada.com/stream/cameras/v1/footage/stream/stream.m3u8?camera_id=c"
T0 = 1_800_000_000_000_000  # 2027-01-15T08:00:00Z in µs


def playlist(*lines: str) -> str:
    return "\n".join(["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4", *lines, "#EXT-X-ENDLIST"])


def test_segments_are_placed_by_program_date_time_and_a_discontinuity_is_a_gap():
    text = playlist(
        "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:00.000Z", "#EXTINF:4.000,", "a.ts",
        "#EXTINF:2.500,", "b.ts",
        "#EXT-X-DISCONTINUITY", "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:01:00.000Z", "#EXTINF:4.000,", "c.ts",
    )  # fmt: skip
    segments = parse_playlist(text, BASE, request_start_us=T0)
    assert [(s.start_us - T0, s.duration_us) for s in segments] == [
        (0, 4_000_000),
        (4_000_000, 2_500_000),
        (60_000_000, 4_000_000),
    ]
    assert segments[0].uri == "https://api.verkada.com/stream/cameras/v1/footage/stream/a.ts"
    grouped = runs(segments, T0, T0 + 3_600_000_000)
    assert [(r.start_us - T0, r.end_us - T0) for r in grouped] == [(0, 6_500_000), (60_000_000, 64_000_000)]


def test_runs_keep_only_segments_overlapping_the_window_and_skip_gap_segments():
    text = playlist(
        "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:00Z", "#EXTINF:4,", "a.ts", "#EXT-X-GAP", "#EXTINF:4,", "b.ts",
        "#EXTINF:4,", "c.ts",
    )  # fmt: skip
    grouped = runs(parse_playlist(text, BASE, request_start_us=T0), T0 + 1_000_000, T0 + 9_000_000)
    assert [(r.start_us - T0, r.end_us - T0) for r in grouped] == [(0, 4_000_000), (8_000_000, 12_000_000)]


def test_without_date_times_segments_follow_the_requested_start():
    segments = parse_playlist(playlist("#EXTINF:4.000,", "a.ts", "#EXTINF:4.000,", "b.ts"), BASE, request_start_us=T0)
    assert [s.start_us - T0 for s in segments] == [0, 4_000_000]


def test_a_discontinuity_without_a_date_time_is_refused_not_guessed():
    text = playlist("#EXTINF:4,", "a.ts", "#EXT-X-DISCONTINUITY", "#EXTINF:4,", "b.ts")
    with pytest.raises(VmsVendorError, match="cannot be placed"):
        parse_playlist(text, BASE, request_start_us=T0)


def test_fragmented_mp4_maps_and_byte_ranges_are_kept():
    text = playlist(
        '#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"', "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:00Z",
        "#EXTINF:4,", "#EXT-X-BYTERANGE:1000@720", "media.m4s", "#EXTINF:4,", "#EXT-X-BYTERANGE:500", "media.m4s",
    )  # fmt: skip
    first, second = parse_playlist(text, BASE, request_start_us=T0)
    assert first.init_uri.endswith("/init.mp4") and first.init_range.header == "bytes=0-719"
    assert first.byte_range.header == "bytes=720-1719" and second.byte_range.header == "bytes=1720-2219"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a playlist", "not an HLS playlist"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow.m3u8", "multivariant"),
        ('#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="k"\n#EXTINF:4,\na.ts', "encrypted"),
        ("#EXTM3U\na.ts", "without #EXTINF"),
        ("#EXTM3U\n#EXTINF:four,\na.ts", "unreadable"),
    ],
)
def test_unreadable_playlists_are_vendor_errors(text, message):
    with pytest.raises(VmsVendorError, match=message):
        parse_playlist(text, BASE, request_start_us=T0)


def test_durations_are_read_without_float_rounding():
    assert seconds_to_us("4.000") == 4_000_000
    assert seconds_to_us("3.2") == 3_200_000
    assert seconds_to_us("0.0334") == 33_400
