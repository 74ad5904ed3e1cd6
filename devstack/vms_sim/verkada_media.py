"""Real HLS media for the Verkada profile: MPEG-TS segments of H.264 whose every sample names its footage.

A segment holds one sample per footage frame of `devstack.footage` (frames cut at whole epoch seconds):
each sample is a decodable H.264 IDR picture (a tiny grey image encoded once with libx264) preceded by
an SEI "user data unregistered" message whose payload is the footage frame itself — its 40-byte
header (camera tag, start ms, duration ms) and fill up to the bitrate. A demuxer and a remuxer carry
SEI messages through untouched, so the checker can read every sample's header out of the delivered
MP4. Sample timestamps are the frame's epoch milliseconds on MPEG-TS's 90 kHz, 33-bit clock (they wrap,
as a real camera's do).

Segments lie on a grid of `segment_seconds` of epoch time, cut short where a recording starts or ends.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache

import av

from devstack.footage import camera_tag, frame_bytes, frame_length, frame_times
from devstack.footage_mp4 import sei_nal

from .intervals import Interval

TS_CLOCK = 90
TS_WRAP = 1 << 33
START_CODE = b"\x00\x00\x00\x01"
WIDTH, HEIGHT = 64, 48


@dataclass(frozen=True)
class SegmentSpan:
    start_ms: int
    end_ms: int


@cache
def _picture() -> tuple[bytes, bytes, bytes]:
    """(SPS, PPS, IDR slice) NAL units of one grey picture, encoded once."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = Fraction(1, 1)
    codec.options = {"x264-params": "keyint=1:repeat-headers=1:annexb=1", "preset": "ultrafast"}
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    for index, plane in enumerate(frame.planes):
        plane.update(bytes([128 if index else 110]) * plane.buffer_size)
    frame.pts = 0
    data = b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])
    units = {n[0] & 0x1F: n for n in re.split(rb"\x00\x00\x00\x01|\x00\x00\x01", data) if n}
    return units[7], units[8], units[5]


def sample(footage_frame: bytes) -> bytes:
    """One Annex B access unit: parameter sets, our SEI, the picture."""
    sps, pps, idr = _picture()
    return START_CODE + sps + START_CODE + pps + START_CODE + sei_nal(footage_frame) + START_CODE + idr


def segment_spans(recorded: list[Interval], segment_seconds: int) -> Iterator[SegmentSpan]:
    """The segments of recorded intervals: on the epoch grid of `segment_seconds`, cut at each interval's ends."""
    step = segment_seconds * 1000
    for start, end in recorded:
        cursor = start
        while cursor < end:
            boundary = min(end, (cursor // step + 1) * step)
            yield SegmentSpan(cursor, boundary)
            cursor = boundary


@lru_cache(maxsize=16)
def ts_segment(camera_id: str, start_ms: int, end_ms: int, bitrate_kbps: int) -> bytes:
    """The MPEG-TS bytes of camera_id's footage [start, end): one H.264 sample per footage frame."""
    tag = camera_tag(camera_id)
    buffer = io.BytesIO()
    output = av.open(buffer, "w", format="mpegts")
    stream = output.add_stream("h264")
    stream.width, stream.height = WIDTH, HEIGHT
    stream.time_base = Fraction(1, 90000)
    for frame_start, duration in frame_times(start_ms, end_ms):
        footage_frame = frame_bytes(tag, frame_start, duration, frame_length(duration, bitrate_kbps))
        packet = av.Packet(sample(footage_frame))
        packet.stream = stream
        packet.time_base = stream.time_base
        packet.pts = packet.dts = frame_start * TS_CLOCK % TS_WRAP
        packet.duration = duration * TS_CLOCK
        packet.is_keyframe = True
        output.mux(packet)
    output.close()
    return buffer.getvalue()


@dataclass(frozen=True)
class BytesStream:
    """Bytes already made, served like the other simulator streams (ranges, drops, trickle)."""

    data: bytes
    key: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def identity(self) -> tuple[object, ...]:
        return ("bytes", self.key)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        view = memoryview(self.data)
        for offset in range(start, min(end, len(self.data)), 1 << 20):
            yield bytes(view[offset : min(end, offset + (1 << 20))])
