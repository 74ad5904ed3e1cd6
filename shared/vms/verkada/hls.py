"""HLS media playlists (RFC 8216) as Verkada's streaming API serves them: segments placed on the wall clock.

Each segment's start comes from its `#EXT-X-PROGRAM-DATE-TIME` (RFC 8216 §4.3.2.6: the time of the
segment's first sample) or, without one, from the end of the segment before it; its length is its
`#EXTINF`. A gap is wherever the next segment starts later than the previous one ended (Verkada marks
it with `#EXT-X-DISCONTINUITY`); `#EXT-X-GAP` segments hold no media. Nothing is assumed continuous:
a discontinuity without a date-time cannot be placed, and is refused rather than guessed.

Times are integer microseconds since the Unix epoch throughout (`datetime`'s own precision).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

from shared.vms.errors import VmsVendorError

VENDOR = "verkada"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CONTIGUOUS_US = 50_000
"""Segments whose start and the previous end differ by at most this are one run (EXTINF rounding)."""
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def to_us(moment: datetime) -> int:
    return (moment.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def seconds_to_us(text: str) -> int:
    """A decimal number of seconds (`4.000`, `3.2`) to microseconds, without float rounding."""
    whole, _, fraction = text.strip().partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a decimal duration: {text!r}")
    return int(whole) * 1_000_000 + int((fraction + "000000")[:6] or 0)


@dataclass(frozen=True)
class ByteRange:
    offset: int
    length: int

    @property
    def header(self) -> str:
        return f"bytes={self.offset}-{self.offset + self.length - 1}"


@dataclass(frozen=True)
class Segment:
    uri: str
    """Absolute URL as listed (no credentials added yet)."""
    start_us: int
    duration_us: int
    byte_range: ByteRange | None = None
    init_uri: str | None = None
    """EXT-X-MAP: the fragmented-MP4 initialisation section this segment needs."""
    init_range: ByteRange | None = None
    discontinuity: bool = False
    gap: bool = False

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us


@dataclass(frozen=True)
class Run:
    """Segments back to back without a hole: one file."""

    segments: tuple[Segment, ...]

    @property
    def start_us(self) -> int:
        return self.segments[0].start_us

    @property
    def end_us(self) -> int:
        return self.segments[-1].end_us


def parse_playlist(text: str, base_url: str, *, request_start_us: int) -> list[Segment]:
    """The segments of a media playlist, each placed on the wall clock; VmsVendorError if it cannot be read."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise VmsVendorError("Verkada: the footage playlist is not an HLS playlist (#EXTM3U missing)", vendor=VENDOR)
    if any(line.startswith("#EXT-X-STREAM-INF") for line in lines):
        raise VmsVendorError("Verkada: expected a media playlist, got a multivariant playlist", vendor=VENDOR)
    segments: list[Segment] = []
    pending: dict[str, object] = {}
    init: tuple[str | None, ByteRange | None] = (None, None)
    last_range_end = 0
    try:
        for line in lines[1:]:
            if not line.startswith("#"):
                segments.append(_segment(segments, pending, urljoin(base_url, line), init, request_start_us))
                byte_range = pending.get("byte_range")
                if isinstance(byte_range, ByteRange):
                    last_range_end = byte_range.offset + byte_range.length
                pending = {}
                continue
            tag, _, value = line.partition(":")
            if tag == "#EXTINF":
                pending["duration_us"] = seconds_to_us(value.split(",", 1)[0])
            elif tag == "#EXT-X-PROGRAM-DATE-TIME":
                pending["pdt_us"] = to_us(_parse_datetime(value))
            elif tag == "#EXT-X-DISCONTINUITY":
                pending["discontinuity"] = True
            elif tag == "#EXT-X-GAP":
                pending["gap"] = True
            elif tag == "#EXT-X-BYTERANGE":
                pending["byte_range"] = _byte_range(value, last_range_end)
            elif tag == "#EXT-X-MAP":
                attributes = _attributes(value)
                uri = attributes.get("URI")
                if not uri:
                    raise ValueError("EXT-X-MAP without URI")
                given = attributes.get("BYTERANGE")
                init = (urljoin(base_url, uri), _byte_range(given, 0) if given else None)
            elif tag == "#EXT-X-KEY":
                method = _attributes(value).get("METHOD", "NONE")
                if method != "NONE":
                    raise VmsVendorError(
                        f"Verkada: the footage playlist is encrypted (METHOD={method[:20]}), which this agent "
                        "does not support",
                        vendor=VENDOR,
                    )
    except ValueError as exc:
        raise VmsVendorError(f"Verkada: unreadable footage playlist ({exc})", vendor=VENDOR) from None
    return segments


def _segment(
    previous: list[Segment],
    pending: dict[str, object],
    uri: str,
    init: tuple[str | None, ByteRange | None],
    request_start_us: int,
) -> Segment:
    if "duration_us" not in pending:
        raise ValueError("a segment without #EXTINF")
    duration = int(pending["duration_us"])  # type: ignore[call-overload]
    discontinuity = bool(pending.get("discontinuity"))
    if "pdt_us" in pending:
        start = int(pending["pdt_us"])  # type: ignore[call-overload]
    elif discontinuity and previous:
        raise ValueError("a discontinuity without #EXT-X-PROGRAM-DATE-TIME cannot be placed in time")
    else:
        start = previous[-1].end_us if previous else request_start_us
    byte_range = pending.get("byte_range")
    return Segment(
        uri=uri,
        start_us=start,
        duration_us=duration,
        byte_range=byte_range if isinstance(byte_range, ByteRange) else None,
        init_uri=init[0],
        init_range=init[1],
        discontinuity=discontinuity,
        gap=bool(pending.get("gap")),
    )


def runs(segments: list[Segment], start_us: int, end_us: int) -> list[Run]:
    """The segments that overlap [start, end), grouped into runs without a hole between them."""
    grouped: list[list[Segment]] = []
    for segment in sorted(segments, key=lambda s: s.start_us):
        if segment.gap or segment.duration_us <= 0 or segment.end_us <= start_us or segment.start_us >= end_us:
            continue
        if grouped and abs(segment.start_us - grouped[-1][-1].end_us) <= CONTIGUOUS_US:
            grouped[-1].append(segment)
        else:
            grouped.append([segment])
    return [Run(tuple(group)) for group in grouped]


def _parse_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _attributes(value: str) -> dict[str, str]:
    return {name: raw.strip('"') for name, raw in _ATTRIBUTE.findall(value)}


def _byte_range(value: str, default_offset: int) -> ByteRange:
    length, _, offset = value.strip().strip('"').partition("@")
    return ByteRange(int(offset) if offset else default_offset, int(length))
