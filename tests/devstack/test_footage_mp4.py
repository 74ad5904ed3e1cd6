"""The MP4 footage check: a real demuxer reads what the adapter delivered and names any mix-up."""

from __future__ import annotations

from fractions import Fraction

from devstack.footage import footage
from devstack.footage_mp4 import Mp4FootageReader, is_mp4
from devstack.registry_sim.content import MediaCheck
from devstack.vms_sim.verkada_media import segment_spans, ts_segment
from shared.vms.verkada import media
from shared.vms.verkada.hls import Run, Segment

CAMERA = "5c86b667-9b06-7337-a194-e7a80c10d507"
T0 = 1_800_000_000_000  # ms, on the 4-second grid


def remuxed(start_ms: int, end_ms: int, *, camera: str = CAMERA, cut: tuple[int, int] | None = None) -> bytes:
    spans = list(segment_spans([(start_ms, end_ms)], 4))
    segments = [Segment(f"s{i}", s.start_ms * 1000, (s.end_ms - s.start_ms) * 1000) for i, s in enumerate(spans)]
    data = {seg.uri: ts_segment(camera, sp.start_ms, sp.end_ms, 64) for seg, sp in zip(segments, spans, strict=True)}
    lo, hi = cut or (start_ms, end_ms)
    expected = media.bounds(lambda s: data[s.uri], Run(tuple(segments)), Fraction(lo, 1000), Fraction(hi, 1000))
    assert expected is not None
    return b"".join(media.remux(lambda s: data[s.uri], Run(tuple(segments)), expected, what="test"))


def check(data: bytes, *, piece: int = 65536):
    reader = Mp4FootageReader()
    for offset in range(0, len(data), piece):
        reader.feed(data[offset : offset + piece])
    return reader.result()


def test_the_delivered_mp4_is_exactly_the_footage_of_the_window():
    identity = check(remuxed(T0, T0 + 30_000, cut=(T0 + 2_500, T0 + 21_000)))
    assert identity.describes(CAMERA, T0 + 3_000, T0 + 21_000) == ""
    assert identity.frames == 18


def test_a_mix_up_of_camera_or_window_is_named():
    identity = check(remuxed(T0, T0 + 12_000))
    assert "not camera" in identity.describes("another-camera", T0, T0 + 12_000)
    assert "reported as" in identity.describes(CAMERA, T0, T0 + 13_000)
    assert "reported as" in identity.describes(CAMERA, T0 + 1_000, T0 + 12_000)


def test_a_truncated_mp4_is_refused():
    data = remuxed(T0, T0 + 20_000)
    identity = check(data[: len(data) // 2])
    assert identity.describes(CAMERA, T0, T0 + 20_000) != ""


def verdict(data: bytes) -> str:
    content = MediaCheck(CAMERA, T0, T0 + 8_000)
    for offset in range(0, len(data), 4096):
        content.feed(data[offset : offset + 4096])
    return content.problem()  # also ends the MP4 reader's helper thread


def test_the_registry_tells_the_format_from_the_first_bytes_and_checks_either():
    mp4 = remuxed(T0, T0 + 8_000)
    raw = b"".join(footage(CAMERA, T0, T0 + 8_000, 64))

    assert is_mp4(mp4[:64]) and not is_mp4(raw[:64])
    assert verdict(mp4) == "" and verdict(raw) == ""
    assert "not in a media format" in verdict(b"\x00" * 100)
