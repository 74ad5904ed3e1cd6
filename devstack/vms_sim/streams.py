"""Deterministic video streams: bytes generated on the fly from (camera, start, end) and a bitrate.

A stream is never materialised. One 1 MiB pseudo-random block is made once; chunk i of a stream is
that block rotated by an offset mixed from the stream's key and i, sliced out of a doubled copy (one
memcpy per MiB, so generation runs at memory speed). The first 24 bytes are an ISO-BMFF `ftyp` box.

`stream_size()` and `stream_sha256()` give any test the size and digest of what the simulator serves
for a recording window, without a running simulator.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Protocol

from .timeutil import parse_iso, to_ms

CHUNK = 1 << 20
DEFAULT_BITRATE_KBPS = 2000
FTYP = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 0x200, b"isom", b"mp42")
_MASK64 = (1 << 64) - 1


@cache
def _doubled_block() -> bytes:
    block = hashlib.shake_256(b"devstack.vms_sim stream block v1").digest(CHUNK)
    return block + block


def _mix(value: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & _MASK64
    return value ^ (value >> 31)


class Stream(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def identity(self) -> tuple[object, ...]: ...

    def iter_range(self, start: int, end: int) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class SyntheticStream:
    """`size` bytes determined by `key` alone; pieces never cross a CHUNK boundary."""

    key: str
    size: int

    @property
    def identity(self) -> tuple[object, ...]:
        return ("synthetic", self.key, self.size)

    def _rotation(self, seed: int, index: int) -> int:
        return _mix(seed ^ ((index + 1) * 0x9E3779B97F4A7C15 & _MASK64)) % CHUNK

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of the stream, in pieces of at most CHUNK bytes."""
        end = min(end, self.size)
        if start >= end:
            return
        doubled = _doubled_block()
        seed = int.from_bytes(hashlib.sha256(self.key.encode()).digest()[:8], "big")
        position = start
        while position < end:
            index, within = divmod(position, CHUNK)
            length = min(CHUNK - within, end - position)
            offset = self._rotation(seed, index) + within
            piece = doubled[offset : offset + length]
            if position < len(FTYP):
                head = FTYP[position : min(len(FTYP), position + length)]
                piece = head + piece[len(head) :]
            yield piece
            position += length


@dataclass(frozen=True)
class ConcatStream:
    """Several streams back to back (a clip of the recorded parts of a window)."""

    parts: tuple[SyntheticStream, ...]

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    @property
    def identity(self) -> tuple[object, ...]:
        return ("concat", *(part.identity for part in self.parts))

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        offset = 0
        for part in self.parts:
            lo, hi = max(start - offset, 0), min(end - offset, part.size)
            if lo < hi:
                yield from part.iter_range(lo, hi)
            offset += part.size
            if offset >= end:
                return


def byte_count(duration_ms: int, bitrate_kbps: int) -> int:
    """duration × bitrate: 2000 kbit/s is 250 bytes per millisecond."""
    return max(duration_ms, 0) * bitrate_kbps // 8


def recording_stream(camera_id: str, start_ms: int, end_ms: int, bitrate_kbps: int) -> SyntheticStream:
    """What the simulator serves for one continuous recorded window of a camera."""
    return SyntheticStream(f"recording|{camera_id}|{start_ms}|{end_ms}", byte_count(end_ms - start_ms, bitrate_kbps))


def sha256_of(stream: Stream) -> str:
    digest = hashlib.sha256()
    for piece in stream.iter_range(0, stream.size):
        digest.update(piece)
    return digest.hexdigest()


class DigestCache:
    """SHA-256 of streams, computed on first request (by generating them) and then remembered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digests: dict[tuple[object, ...], str] = {}
        self._pending: dict[tuple[object, ...], threading.Lock] = {}

    def sha256(self, stream: Stream) -> str:
        identity = stream.identity
        with self._lock:
            if identity in self._digests:
                return self._digests[identity]
            gate = self._pending.setdefault(identity, threading.Lock())
        with gate:  # one computation per stream, however many callers ask at once
            with self._lock:
                if identity in self._digests:
                    return self._digests[identity]
            value = sha256_of(stream)
            with self._lock:
                self._digests[identity] = value
                self._pending.pop(identity, None)
            return value


def _ms(moment: datetime | str | int) -> int:
    if isinstance(moment, int):
        return moment
    if isinstance(moment, str):
        return parse_iso(moment)
    return to_ms(moment)


def stream_size(
    camera_id: str, start: datetime | str | int, end: datetime | str | int, bitrate_kbps: int = DEFAULT_BITRATE_KBPS
) -> int:
    """Size of the stream served for camera_id's recording [start, end) (datetimes, ISO strings or epoch ms)."""
    return recording_stream(camera_id, _ms(start), _ms(end), bitrate_kbps).size


def stream_sha256(
    camera_id: str, start: datetime | str | int, end: datetime | str | int, bitrate_kbps: int = DEFAULT_BITRATE_KBPS
) -> str:
    """SHA-256 (hex) of the stream served for camera_id's recording [start, end); generates it (≈2 GB/s)."""
    return sha256_of(recording_stream(camera_id, _ms(start), _ms(end), bitrate_kbps))
