"""Simulated footage whose bytes say what they are: which camera, which milliseconds, real or filler.

Both simulators share this format, so the Registry simulator can check that a delivered file holds
exactly the footage it was reported as (the right camera, the exact window, nothing missing or added):

    a media file  = frames back to back, no other bytes
    a frame       = a 40-byte header + deterministic fill, `length` bytes in all
    header        = magic (8)  b"CLRFRAME" for footage, b"CLRNOVID" for a placeholder
                                ("video not available", what Rhombus splices over time with no footage)
                  + start     (8, unsigned big-endian, ms since the Unix epoch)
                  + duration  (4, ms)
                  + length    (4, bytes of the whole frame, header included)
                  + camera    (16, the first 16 bytes of SHA-256 of the camera id in UTF-8)

Frames are cut at whole seconds of epoch time, so a window that starts or ends mid-second begins or
ends with a shorter frame, and the footage of any sub-window is byte for byte the matching run of
frames of a longer window. A frame of `d` ms at `b` kbit/s is `max(40, d * b // 8)` bytes.

Thumbnails carry a JPEG comment segment `clearance-sim camera=<32 hex> captured=<ms>` instead.

`FootageReader` checks a stream fed in arbitrary pieces, in constant memory.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

FOOTAGE_MAGIC = b"CLRFRAME"
FILLER_MAGIC = b"CLRNOVID"
HEADER = struct.Struct(">8sQII16s")
HEADER_LEN = HEADER.size  # 40
FRAME_MS = 1000
_FILL_BLOCK = 1 << 20
_MASK64 = (1 << 64) - 1
_JPEG_COMMENT = re.compile(rb"clearance-sim camera=([0-9a-f]{32}) captured=(\d+)")


def camera_tag(camera_id: str) -> bytes:
    return hashlib.sha256(camera_id.encode("utf-8")).digest()[:16]


def frame_length(duration_ms: int, bitrate_kbps: int) -> int:
    return max(HEADER_LEN, duration_ms * bitrate_kbps // 8)


def frame_times(start_ms: int, end_ms: int) -> Iterator[tuple[int, int]]:
    """(start, duration) of each frame of [start, end): cut at whole seconds."""
    cursor = start_ms
    while cursor < end_ms:
        boundary = min(end_ms, (cursor // FRAME_MS + 1) * FRAME_MS)
        yield cursor, boundary - cursor
        cursor = boundary


def footage_size(start_ms: int, end_ms: int, bitrate_kbps: int) -> int:
    """Bytes of the footage of [start, end) at a bitrate, without generating it."""
    if end_ms <= start_ms:
        return 0
    first_end = min(end_ms, (start_ms // FRAME_MS + 1) * FRAME_MS)
    size = frame_length(first_end - start_ms, bitrate_kbps)
    if first_end == end_ms:
        return size
    last_start = max(first_end, (end_ms - 1) // FRAME_MS * FRAME_MS)
    whole = (last_start - first_end) // FRAME_MS
    return size + whole * frame_length(FRAME_MS, bitrate_kbps) + frame_length(end_ms - last_start, bitrate_kbps)


@cache
def _doubled_fill() -> bytes:
    block = hashlib.shake_256(b"devstack.footage fill v1").digest(_FILL_BLOCK)
    return block + block


@cache
def _doubled_fill_view() -> memoryview:
    return memoryview(_doubled_fill())


def _mix(value: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & _MASK64
    return value ^ (value >> 31)


def frame_views(
    tag: bytes, start_ms: int, duration_ms: int, length: int, *, filler: bool = False
) -> list[bytes | memoryview]:
    """One whole frame as pieces without copying the fill: the header, then views of the fill block."""
    magic = FILLER_MAGIC if filler else FOOTAGE_MAGIC
    pieces: list[bytes | memoryview] = [HEADER.pack(magic, start_ms, duration_ms, length, tag)]
    body, doubled = length - HEADER_LEN, _doubled_fill_view()
    seed = _mix(int.from_bytes(tag[:8], "big") ^ start_ms)
    while body > 0:
        offset = seed % _FILL_BLOCK
        take = min(body, _FILL_BLOCK)
        pieces.append(doubled[offset : offset + take])
        body -= take
        seed = _mix(seed + 1)
    return pieces


def frame_bytes(tag: bytes, start_ms: int, duration_ms: int, length: int, *, filler: bool = False) -> bytes:
    """One whole frame. The fill depends on the camera and the frame's start only."""
    return b"".join(frame_views(tag, start_ms, duration_ms, length, filler=filler))


def footage(camera_id: str, start_ms: int, end_ms: int, bitrate_kbps: int, *, filler: bool = False) -> Iterator[bytes]:
    """The footage of [start, end) for a camera, frame by frame (never materialised whole)."""
    tag = camera_tag(camera_id)
    for frame_start, duration in frame_times(start_ms, end_ms):
        yield frame_bytes(tag, frame_start, duration, frame_length(duration, bitrate_kbps), filler=filler)


def footage_range(
    camera_id: str, start_ms: int, end_ms: int, bitrate_kbps: int, first: int, stop: int, *, filler: bool = False
) -> Iterator[bytes | memoryview]:
    """Bytes [first, stop) of the footage of [start, end), as pieces (views where possible), without
    generating the frames before `first`: a server answers a Range request from the middle at once."""
    stop = min(stop, footage_size(start_ms, end_ms, bitrate_kbps))
    if first >= stop:
        return
    tag = camera_tag(camera_id)
    frame_start, offset = _frame_containing(start_ms, end_ms, bitrate_kbps, first)
    position = first - offset  # bytes of the current frame to skip
    while offset < stop:
        duration = min(end_ms, (frame_start // FRAME_MS + 1) * FRAME_MS) - frame_start
        length = frame_length(duration, bitrate_kbps)
        wanted = min(length, stop - offset)
        cursor = 0
        for piece in frame_views(tag, frame_start, duration, length, filler=filler):
            lo, hi = max(position - cursor, 0), min(wanted - cursor, len(piece))
            if lo < hi:
                yield piece if (lo, hi) == (0, len(piece)) else piece[lo:hi]
            cursor += len(piece)
            if cursor >= wanted:
                break
        offset += length
        frame_start += duration
        position = 0


def _frame_containing(start_ms: int, end_ms: int, bitrate_kbps: int, byte: int) -> tuple[int, int]:
    """(start ms, first byte) of the frame that holds byte `byte` of the footage of [start, end)."""
    first_end = min(end_ms, (start_ms // FRAME_MS + 1) * FRAME_MS)
    first_length = frame_length(first_end - start_ms, bitrate_kbps)
    if byte < first_length or first_end == end_ms:
        return start_ms, 0
    whole = frame_length(FRAME_MS, bitrate_kbps)
    last_start = max(first_end, (end_ms - 1) // FRAME_MS * FRAME_MS)
    index = min((byte - first_length) // whole, (last_start - first_end) // FRAME_MS)
    return first_end + index * FRAME_MS, first_length + index * whole


@dataclass(frozen=True)
class FootageIdentity:
    """What a media file turned out to hold."""

    camera: bytes | None
    start_ms: int | None
    end_ms: int | None
    frames: int
    filler_frames: int
    problem: str = ""
    """Empty when the file is well-formed, one contiguous run of one camera's frames."""

    def describes(self, camera_id: str, start_ms: int, end_ms: int) -> str:
        """Empty when the file is exactly camera_id's footage of [start, end); otherwise why not."""
        if self.problem:
            return self.problem
        if self.frames == 0:
            return "the file holds no footage frames"
        if self.filler_frames:
            return f"{self.filler_frames} of {self.frames} frames are 'video not available' placeholders"
        if self.camera != camera_tag(camera_id):
            return f"the footage is not camera {camera_id}'s"
        if (self.start_ms, self.end_ms) != (start_ms, end_ms):
            return f"the footage covers {self.start_ms}..{self.end_ms} ms, but was reported as {start_ms}..{end_ms} ms"
        return ""


class FootageReader:
    """Feed a media file in pieces of any size; `result()` says which camera and window it holds."""

    def __init__(self) -> None:
        self._header = bytearray()
        self._skip = 0  # bytes of the current frame's body still to pass over
        self._camera: bytes | None = None
        self._start: int | None = None
        self._end: int | None = None
        self._frames = 0
        self._filler = 0
        self._problem = ""

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view and not self._problem:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                view = view[step:]
                continue
            need = HEADER_LEN - len(self._header)
            self._header += view[:need]
            view = view[need:]
            if len(self._header) == HEADER_LEN:
                self._frame(bytes(self._header))
                self._header.clear()

    def _frame(self, header: bytes) -> None:
        magic, start, duration, length, camera = HEADER.unpack(header)
        if magic not in (FOOTAGE_MAGIC, FILLER_MAGIC) or length < HEADER_LEN:
            self._problem = f"byte stream is not simulated footage at frame {self._frames}"
            return
        if self._camera is None:
            self._camera, self._start = camera, start
        elif camera != self._camera:
            self._problem = f"frame {self._frames} belongs to another camera"
            return
        elif start != self._end:
            self._problem = f"frame {self._frames} starts at {start} ms, not where the previous ended ({self._end} ms)"
            return
        self._end = start + duration
        self._frames += 1
        self._filler += magic == FILLER_MAGIC
        self._skip = length - HEADER_LEN

    def result(self) -> FootageIdentity:
        problem = self._problem
        if not problem and (self._header or self._skip):
            problem = "the file ends inside a frame (truncated)"
        return FootageIdentity(self._camera, self._start, self._end, self._frames, self._filler, problem)


def jpeg_comment(camera_id: str, captured_ms: int) -> bytes:
    """The payload of the COM segment a simulated snapshot carries."""
    return b"clearance-sim camera=" + camera_tag(camera_id).hex().encode() + b" captured=" + str(captured_ms).encode()


def read_jpeg_comment(image: bytes) -> tuple[bytes, int] | None:
    """(camera tag, captured ms) from a simulated snapshot, or None when it carries no such comment."""
    match = _JPEG_COMMENT.search(image)
    if match is None:
        return None
    return bytes.fromhex(match.group(1).decode()), int(match.group(2))
