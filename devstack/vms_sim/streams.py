"""What the simulator serves as video: `devstack.footage` frames, generated on the fly, never materialised.

A `FootageStream` is one camera's footage of [start, end) at a bitrate (or "video not available"
filler for that time); a `ConcatStream` is several back to back (a Rhombus clip: footage where there
is some, filler where there is none). Pieces are at most CHUNK bytes, joined from views of the
footage's fill block (one copy per MiB), so serving runs at memory speed and any byte range starts
at once.

`stream_size()` and `stream_sha256()` give any test the size and digest of what the simulator serves
for a recording window, without a running simulator.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from devstack.footage import footage_range, footage_size

from .timeutil import parse_iso, to_ms

CHUNK = 1 << 20
DEFAULT_BITRATE_KBPS = 2000


class Stream(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def identity(self) -> tuple[object, ...]: ...

    def iter_range(self, start: int, end: int) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class FootageStream:
    """A camera's footage of [start_ms, end_ms), or placeholder frames for it (`filler`)."""

    camera_id: str
    start_ms: int
    end_ms: int
    bitrate_kbps: int
    filler: bool = False

    @property
    def size(self) -> int:
        return footage_size(self.start_ms, self.end_ms, self.bitrate_kbps)

    @property
    def identity(self) -> tuple[object, ...]:
        return ("footage", self.camera_id, self.start_ms, self.end_ms, self.bitrate_kbps, self.filler)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) in pieces of at most CHUNK bytes."""
        pending: list[bytes | memoryview] = []
        held = 0
        views = footage_range(
            self.camera_id, self.start_ms, self.end_ms, self.bitrate_kbps, start, end, filler=self.filler
        )
        for view in views:
            while view:
                take = min(len(view), CHUNK - held)
                pending.append(view if take == len(view) else view[:take])
                held += take
                view = view[take:]
                if held == CHUNK:
                    yield b"".join(pending)
                    pending, held = [], 0
        if pending:
            yield b"".join(pending)


@dataclass(frozen=True)
class ConcatStream:
    """Several streams back to back."""

    parts: tuple[Stream, ...]

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    @property
    def identity(self) -> tuple[object, ...]:
        return ("concat", *(part.identity for part in self.parts))

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        offset = 0
        for part in self.parts:
            size = part.size
            lo, hi = max(start - offset, 0), min(end - offset, size)
            if lo < hi:
                yield from part.iter_range(lo, hi)
            offset += size
            if offset >= end:
                return


def recording_stream(camera_id: str, start_ms: int, end_ms: int, bitrate_kbps: int) -> FootageStream:
    """What the simulator serves for one continuous recorded window of a camera."""
    return FootageStream(camera_id, start_ms, end_ms, bitrate_kbps)


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
    """Size of the footage served for camera_id's recording [start, end) (datetimes, ISO strings or epoch ms)."""
    return recording_stream(camera_id, _ms(start), _ms(end), bitrate_kbps).size


def stream_sha256(
    camera_id: str, start: datetime | str | int, end: datetime | str | int, bitrate_kbps: int = DEFAULT_BITRATE_KBPS
) -> str:
    """SHA-256 (hex) of the footage served for camera_id's recording [start, end); generates it (≈2 GB/s)."""
    return sha256_of(recording_stream(camera_id, _ms(start), _ms(end), bitrate_kbps))
