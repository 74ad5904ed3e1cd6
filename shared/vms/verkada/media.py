"""HLS media segments → one fragmented MP4, remuxed (never re-encoded) with PyAV (FFmpeg's libraries).

A segment (MPEG-TS, or fragmented MP4 after its EXT-X-MAP section) is demuxed in memory: segments are
a few seconds long, so memory stays flat whatever the file's length. Each sample is placed on the wall
clock: its segment's start (the playlist's date-time of the first sample) plus its presentation-time
offset within the segment. A sample lasts until the next one; the last of a segment lasts what the
container says, else until the segment's end.

The file holds exactly the samples of [start, end): it begins with the first keyframe that starts at or
after `start` (nothing before a keyframe can be decoded) and ends with the last sample that ends by
`end`. `bounds()` finds those two instants from the boundary segments alone, so the times reported for a
file are known before it is streamed; `remux()` then checks every sample against them and raises
VmsTransient rather than pass on a file that does not hold exactly that footage. The output is a
fragmented MP4 (`empty_moov`, one fragment per keyframe), written to the stream as it is made: no temp
file, no seeking, and every player and demuxer reads it. The next segment downloads while one is remuxed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from shared.vms.errors import VmsTransient, VmsVendorError
from shared.vms.verkada.hls import Run, Segment

VENDOR = "verkada"
OUTPUT_CHUNK = 1024 * 1024
TS_WRAP = 1 << 33  # MPEG-TS timestamps are 33-bit
MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
# A segment is read from memory: no need to probe 5 MB or analyse seconds before the first packet.
DEMUX_OPTIONS = {"probesize": "32", "analyzeduration": "0"}
DEMUX_BUFFER = 1 << 18

FetchSegment = Callable[[Segment], bytes]
"""The bytes a segment needs to be demuxed (its EXT-X-MAP section first, for fragmented MP4)."""


@dataclass
class Sample:
    packet: av.Packet[Any]
    start: Fraction
    """Wall-clock seconds since the epoch."""
    duration: Fraction
    keyframe: bool

    @property
    def end(self) -> Fraction:
        return self.start + self.duration


@dataclass(frozen=True)
class Bounds:
    start: Fraction
    end: Fraction


class Demuxed:
    """One segment's video samples on the wall clock, and the input stream they came from."""

    def __init__(self, data: bytes, segment: Segment) -> None:
        try:
            self._container = av.open(io.BytesIO(data), "r", options=DEMUX_OPTIONS, buffer_size=DEMUX_BUFFER)
        except av.error.FFmpegError as exc:
            raise VmsTransient(f"Verkada: a footage segment cannot be demuxed ({type(exc).__name__})") from None
        if not self._container.streams.video:
            self._container.close()
            raise VmsVendorError("Verkada: a footage segment holds no video stream", vendor=VENDOR)
        self.stream = self._container.streams.video[0]
        self.samples = self._read(segment)

    def _read(self, segment: Segment) -> list[Sample]:
        time_base = self.stream.time_base
        wraps = self._container.format.name == "mpegts"
        try:
            timed = [(p, p.pts) for p in self._container.demux(self.stream) if p.pts is not None and p.size]
        except av.error.FFmpegError as exc:
            raise VmsTransient(f"Verkada: a footage segment is damaged ({type(exc).__name__})") from None
        if not timed or time_base is None:
            return []
        packets = [packet for packet, _ in timed]
        first = min(pts for _, pts in timed)
        base = Fraction(segment.start_us, 1_000_000)

        def offset(pts: int) -> int:
            delta = pts - first
            return (delta + TS_WRAP // 2) % TS_WRAP - TS_WRAP // 2 if wraps else delta

        starts = [base + offset(pts) * time_base for _, pts in timed]
        segment_end = Fraction(segment.end_us, 1_000_000)
        samples = []
        for index, packet in enumerate(packets):
            if index + 1 < len(packets):
                duration = starts[index + 1] - starts[index]
            elif packet.duration:
                duration = packet.duration * time_base
            else:
                duration = segment_end - starts[index]
            samples.append(Sample(packet, starts[index], duration, bool(packet.is_keyframe)))
        return samples

    def close(self) -> None:
        self._container.close()


def bounds(fetch: FetchSegment, run: Run, start: Fraction, end: Fraction) -> Bounds | None:
    """The first keyframe at or after `start` and the end of the last sample ending by `end`, read from
    the segments at the edges of the window only; None when no whole sample fits."""
    inside = [s for s in run.segments if s.end_us > start * 1_000_000 and s.start_us < end * 1_000_000]
    first = last = None
    for segment in inside:
        demuxed = Demuxed(fetch(segment), segment)
        try:
            first = next((s.start for s in demuxed.samples if s.keyframe and s.start >= start and s.end <= end), None)
        finally:
            demuxed.close()
        if first is not None:
            break
    if first is None:
        return None
    for segment in reversed(inside):
        demuxed = Demuxed(fetch(segment), segment)
        try:
            ends = [s.end for s in demuxed.samples if s.start >= first and s.end <= end]
        finally:
            demuxed.close()
        if ends:
            last = max(ends)
            break
    return Bounds(first, last) if last is not None else None


class _Sink:
    """Where the muxer writes: bytes wait here until the generator hands them on."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        data, self.parts, self.size = b"".join(self.parts), [], 0
        return data


def _prefetched(fetch: FetchSegment, segments: list[Segment]) -> Iterator[tuple[Segment, bytes]]:
    """Each segment with its bytes, the next one already downloading while this one is remuxed (two
    segments in memory at most)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verkada-segment") as pool:
        pending = pool.submit(fetch, segments[0]) if segments else None
        for index, segment in enumerate(segments):
            assert pending is not None
            data = pending.result()
            pending = pool.submit(fetch, segments[index + 1]) if index + 1 < len(segments) else None
            try:
                yield segment, data
            except GeneratorExit:
                if pending is not None:
                    pending.cancel()
                raise


def remux(fetch: FetchSegment, run: Run, expected: Bounds, *, what: str) -> Iterator[bytes]:
    """The MP4 of exactly [expected.start, expected.end), in chunks; VmsTransient when the footage served
    is not exactly that (a segment changed, a hole, a truncated segment)."""
    needed = [
        s for s in run.segments if s.end_us > expected.start * 1_000_000 and s.start_us < expected.end * 1_000_000
    ]
    sink = _Sink()
    output = None
    out_stream = None
    cursor: Fraction | None = None  # where the next sample must start
    last_dts = -1
    try:
        for segment, data in _prefetched(fetch, needed):
            demuxed = Demuxed(data, segment)
            try:
                if output is None:
                    output = av.open(sink, "w", format="mp4", options=MP4_OPTIONS)
                    out_stream = output.add_stream_from_template(demuxed.stream)
                    out_stream.time_base = demuxed.stream.time_base
                assert out_stream is not None
                time_base = out_stream.time_base
                for sample in demuxed.samples:
                    if sample.start < expected.start or sample.end > expected.end:
                        continue
                    if cursor is None:
                        if sample.start != expected.start or not sample.keyframe:
                            raise VmsTransient(f"{what}: the footage no longer starts where it was measured to")
                    elif abs(sample.start - cursor) * 1_000_000 > 1_000:
                        raise VmsTransient(
                            f"{what}: the footage jumps {float(sample.start - cursor):+.3f} s at "
                            f"{float(sample.start):.3f} (a damaged or missing segment)"
                        )
                    if time_base is None:  # copied from the first segment's stream, which had none
                        raise VmsTransient(f"{what}: the footage has no time base")
                    packet = sample.packet
                    dts = round((sample.start - expected.start) / time_base)
                    if dts <= last_dts:
                        raise VmsVendorError(f"{what}: the footage's timestamps go backwards", vendor=VENDOR)
                    packet.pts = packet.dts = last_dts = dts
                    packet.duration = max(1, round(sample.duration / time_base))
                    packet.time_base = time_base
                    packet.stream = out_stream
                    output.mux(packet)
                    cursor = sample.end
                    if sink.size >= OUTPUT_CHUNK:
                        yield sink.take()
            finally:
                demuxed.close()
        if cursor != expected.end:
            where = "nothing" if cursor is None else f"{float(cursor):.3f}"
            raise VmsTransient(f"{what}: the footage ends at {where}, not at {float(expected.end):.3f} as measured")
        assert output is not None
        output.close()
        output = None
        yield sink.take()
    finally:
        if output is not None:
            with contextlib.suppress(av.error.FFmpegError, ValueError):
                output.close()
