"""Simulated footage inside real video: H.264 samples that carry `devstack.footage` frames, and their check.

The Verkada simulator serves real HLS media: one H.264 sample per footage frame, the frame (its 40-byte
header and fill) carried in an SEI "user data unregistered" message identified by `SEI_UUID`. SEI
messages survive demuxing and remuxing untouched, so the MP4 the agent delivers still says, sample by
sample, which camera and which milliseconds it holds.

`Mp4FootageReader` checks a delivered MP4 fed in pieces (constant memory: a real demuxer, PyAV, reads
it on a helper thread through a small bounded queue): every sample must carry one intact footage frame
of one camera, frames must follow each other without a hole, and the container's own timestamps must
agree with them — each sample's presentation time and duration equal its frame's start and duration
relative to the first frame, so the container's timeline spans exactly the footage. (A fragmented MP4
read as a stream announces no total duration; a seekable reader gets it from the fragments and `mfra`,
which the adapter tests check.) `result()` is a
`FootageIdentity`, whose `describes(camera, start_ms, end_ms)` says why a file is not exactly that footage.
"""

from __future__ import annotations

import queue
import re
import threading
from fractions import Fraction
from typing import Any

import av

from devstack.footage import FILLER_MAGIC, FOOTAGE_MAGIC, HEADER, HEADER_LEN, FootageIdentity

SEI_UUID = bytes.fromhex("c1ea7a9ce5a64c0b9f6e2d5a0b7c3e11")
"""Identifies the simulator's SEI messages (user data unregistered, payload type 5)."""
MP4_FIRST_BOXES = (b"ftyp", b"styp")
MP4_NEXT_BOXES = frozenset({b"moov", b"moof", b"mdat", b"free", b"skip", b"wide", b"sidx", b"uuid", b"styp"})
_EMULATION = re.compile(rb"\x00\x00(?=[\x00-\x03])")
_UNESCAPE = re.compile(rb"\x00\x00\x03")
_QUEUE_PIECES = 8


def sei_nal(payload: bytes) -> bytes:
    """An SEI NAL unit (type 6) with one user-data-unregistered message (type 5) carrying `payload`."""
    body = SEI_UUID + payload
    size = len(body)
    rbsp = b"\x05" + b"\xff" * (size // 255) + bytes([size % 255]) + body + b"\x80"
    return b"\x06" + _EMULATION.sub(b"\x00\x00\x03", rbsp)


def footage_in_sample(nal_units: list[bytes]) -> list[bytes]:
    """The footage frames the simulator's SEI messages carry in one sample's NAL units."""
    frames = []
    for unit in nal_units:
        if not unit or unit[0] & 0x1F != 6:
            continue
        rbsp, position = _UNESCAPE.sub(b"\x00\x00", unit[1:]), 0
        while position < len(rbsp) and rbsp[position] != 0x80:
            kind, position = _sei_number(rbsp, position)
            size, position = _sei_number(rbsp, position)
            body = rbsp[position : position + size]
            position += size
            if kind == 5 and body[:16] == SEI_UUID:
                frames.append(body[16:])
    return frames


def _sei_number(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    while position < len(data) and data[position] == 0xFF:
        value, position = value + 255, position + 1
    if position >= len(data):
        raise ValueError("SEI message cut short")
    return value + data[position], position + 1


def length_prefixed_units(data: bytes, length_size: int) -> list[bytes]:
    """The NAL units of an MP4 (AVCC) sample."""
    units, position = [], 0
    while position + length_size <= len(data):
        size = int.from_bytes(data[position : position + length_size], "big")
        position += length_size
        units.append(data[position : position + size])
        position += size
    if position != len(data):
        raise ValueError("a sample's NAL unit lengths do not add up")
    return units


def is_mp4(head: bytes) -> bool:
    """Whether a file's first bytes are an ISO-BMFF file: an ftyp/styp box followed by another known box."""
    if len(head) < 16 or head[4:8] not in MP4_FIRST_BOXES:
        return False
    first = int.from_bytes(head[:4], "big")
    return 8 <= first <= len(head) - 8 and head[first + 4 : first + 8] in MP4_NEXT_BOXES


class _QueueFile:
    """A read-only, non-seekable file over the pieces fed to the reader."""

    def __init__(self, pieces: queue.Queue[bytes | None]) -> None:
        self._pieces = pieces
        self._buffer = b""
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            piece = self._pieces.get()
            if piece is None:
                self._ended = True
            else:
                self._buffer += piece
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def drain(self) -> None:
        while not self._ended:
            self._ended = self._pieces.get() is None


class Mp4FootageReader:
    """Feed an MP4 in pieces of any size; `result()` says which camera and window its samples hold."""

    def __init__(self) -> None:
        self._pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_PIECES)
        self._file = _QueueFile(self._pieces)
        self._identity: FootageIdentity | None = None
        self._thread = threading.Thread(target=self._run, name="mp4-footage-check", daemon=True)
        self._thread.start()

    def feed(self, data: bytes | memoryview) -> None:
        if data:
            self._pieces.put(bytes(data))

    def result(self) -> FootageIdentity:
        self._pieces.put(None)
        self._thread.join()
        assert self._identity is not None
        return self._identity

    def _run(self) -> None:
        check = _Check()
        try:
            check.read(self._file)
        except (av.error.FFmpegError, ValueError) as exc:
            check.problem = check.problem or f"the MP4 cannot be demuxed: {type(exc).__name__}: {exc}"[:300]
        finally:
            self._file.drain()
            self._identity = check.identity()


class _Check:
    def __init__(self) -> None:
        self.camera: bytes | None = None
        self.start: int | None = None
        self.end: int | None = None
        self.frames = 0
        self.filler = 0
        self.problem = ""

    def read(self, file: _QueueFile) -> None:
        with av.open(file, "r", format="mp4") as container:
            if len(container.streams.video) != 1:
                self.problem = f"the MP4 has {len(container.streams.video)} video streams, expected 1"
                return
            stream = container.streams.video[0]
            extradata = stream.codec_context.extradata or b""
            if stream.codec_context.name != "h264" or len(extradata) < 5:
                self.problem = "the MP4's video is not H.264 with an avcC record"
                return
            length_size = (extradata[4] & 0x03) + 1
            time_base = stream.time_base
            if time_base is None:
                self.problem = "the MP4's video stream has no time base"
                return
            first_pts: int | None = None
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                first_pts = packet.pts if first_pts is None else first_pts
                self.sample(packet, length_size, time_base, first_pts)
                if self.problem:
                    return

    def sample(self, packet: av.Packet[Any], length_size: int, time_base: Fraction, first_pts: int) -> None:
        frames = footage_in_sample(length_prefixed_units(bytes(packet), length_size))
        if len(frames) != 1 or len(frames[0]) < HEADER_LEN:
            self.problem = f"sample {self.frames} carries {len(frames)} footage frames, expected 1"
            return
        magic, start, duration, length, camera = HEADER.unpack(frames[0][:HEADER_LEN])
        if magic not in (FOOTAGE_MAGIC, FILLER_MAGIC) or length != len(frames[0]):
            self.problem = f"sample {self.frames} does not carry an intact footage frame"
            return
        if self.camera is None:
            self.camera, self.start = camera, start
        elif camera != self.camera:
            self.problem = f"sample {self.frames} belongs to another camera"
            return
        elif start != self.end:
            self.problem = f"sample {self.frames} starts at {start} ms, not where the previous ended ({self.end} ms)"
            return
        assert self.start is not None
        if packet.pts is None or packet.duration is None:
            self.problem = f"sample {self.frames} has no time in the container"
            return
        if (packet.pts - first_pts) * time_base * 1000 != start - self.start or (
            packet.duration * time_base * 1000 != duration
        ):
            self.problem = (
                f"sample {self.frames}: the container times it at {float((packet.pts - first_pts) * time_base):.3f} s "
                f"for {float(packet.duration * time_base):.3f} s, its footage at {(start - self.start) / 1000:.3f} s "
                f"for {duration / 1000:.3f} s"
            )
            return
        self.end = start + duration
        self.frames += 1
        self.filler += magic == FILLER_MAGIC

    def identity(self) -> FootageIdentity:
        return FootageIdentity(self.camera, self.start, self.end, self.frames, self.filler, self.problem)
