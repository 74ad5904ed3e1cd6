"""The vendor-neutral adapter interface and the values that cross it.

Everything here is synchronous and streaming. Tickets and downloads are JSON-serialisable so that a
function restarted on another instance can resume polling an export instead of starting it again;
they are stored and shown to operators, so they never hold a credential or a signed URL (a download is
resolved to a fresh URL when it is opened).

The contract every adapter keeps, whatever the vendor:
- `find_recordings` returns exactly the covered intervals, clipped to the window;
- every `Download`'s `start`/`end` are the exact times of the footage inside that file, and no file
  ever holds footage outside the window given to `start_clip`;
- `ClipStatus.missing` lists every part of that window no download holds (gaps, failed exports);
- `cleanup` leaves nothing behind in the customer's account (exports, exported files, saved clips);
- every artefact `start_clip` creates carries its `tag` where the vendor lets us list it, so that
  `remove_tagged` finds and deletes it even when no ticket came back (a run killed, or an answer lost,
  between the VMS creating it and the agent recording it).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

ClipState = Literal["pending", "running", "ready", "failed"]
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,23}")
"""An artefact tag: opaque to the adapter, at most 24 characters of [a-z0-9-] (e.g. "clr-3f9a1c2b7d")."""


def check_tag(tag: str) -> str:
    """The tag itself, or ValueError when it is not one (the adapters put it in names and search for it)."""
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
        raise ValueError("an artefact tag must be 1 to 24 characters of [a-z0-9-], starting with a letter or digit")
    return tag


def carries_tag(name: object, tag: str) -> bool:
    """True when `name` holds `tag` as one of its space-separated words (so "clr-1" is not in "clr-12 …")."""
    return isinstance(name, str) and tag in name.split()


@dataclass(frozen=True)
class Camera:
    id: str
    name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    azimuth: float | None = None
    timezone: str | None = None
    online: bool | None = None
    model: str | None = None
    manufacturer: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Snapshot:
    content: bytes = field(repr=False)
    content_type: str
    captured_at: datetime
    """The frame's real time as the VMS reports it (not the time we asked for)."""


@dataclass(frozen=True, order=True)
class Interval:
    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Capabilities:
    max_window: timedelta
    """The longest window one export/clip request may cover; longer windows are split by the adapter."""
    live_snapshot: bool
    snapshot_at_time: bool
    async_export: bool
    """True when clips are produced by a server-side job that must be polled."""
    reports_coverage: bool
    """True when `find_recordings` knows the gaps; False when it can only echo the window."""
    min_poll_interval: float = 0.0
    """Seconds to wait between two polls of the same export (vendor guidance)."""


@dataclass(frozen=True)
class Download:
    """One file to stream from the VMS, and exactly what it holds."""

    url: str = field(repr=False)
    """Where it downloads from when that is a stable address without signature or credentials; empty when
    only `open_download` can tell (it resolves a fresh, possibly signed, URL each time)."""
    start: datetime
    """The time of the first footage in the file."""
    end: datetime
    """The end of the last footage in the file: the file holds exactly [start, end) of one camera."""
    name: str
    """A suggestion only: the caller names files itself and keeps them unique."""
    size: int | None = None
    source: dict[str, Any] = field(default_factory=dict)
    """Vendor details needed to resolve the URL (e.g. the media interval or export file it came from)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Download:
        return cls(
            url=data["url"],
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            name=data["name"],
            size=data.get("size"),
            source=dict(data.get("source") or {}),
        )


@dataclass(frozen=True)
class ClipStatus:
    state: ClipState
    progress: float
    """0..1"""
    downloads: list[Download] = field(default_factory=list)
    missing: list[Interval] = field(default_factory=list)
    """Parts of the window the VMS reported it could not export (gaps or partial failure)."""
    detail: str = ""


class DownloadStream(abc.ABC):
    """An open download: iterate it for chunks; `content_length` when the server said."""

    content_length: int | None

    @abc.abstractmethod
    def __iter__(self) -> Iterator[bytes]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> DownloadStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VmsAdapter(abc.ABC):
    """What the agent needs from a cloud VMS. One instance per worker; thread-safe."""

    vendor: str
    capabilities: Capabilities

    @abc.abstractmethod
    def list_cameras(self) -> Iterator[Camera]:
        """Every camera of the account, all pages."""

    @abc.abstractmethod
    def get_snapshot(self, camera_id: str, at: datetime | None = None) -> Snapshot:
        """A live image (`at` None) or the recorded frame at or just before `at`."""

    @abc.abstractmethod
    def find_recordings(self, camera_id: str, start: datetime, end: datetime) -> list[Interval]:
        """The covered intervals within [start, end], clipped to it, sorted; empty when nothing was recorded."""

    @abc.abstractmethod
    def start_clip(self, camera_id: str, start: datetime, end: datetime, *, tag: str) -> dict[str, Any]:
        """Begin retrieving video for the window; returns a JSON-serialisable ticket (no secrets, no signed
        URLs, a few KB at most) that records `tag` as "tag". Every artefact created on the VMS (an EEN
        export and its files, a Rhombus saved clip) carries `tag` in its name, so `remove_tagged(tag)`
        can delete it even if this call never returns. ValueError for a malformed tag."""

    @abc.abstractmethod
    def poll_clip(self, ticket: dict[str, Any]) -> ClipStatus:
        """Where the clip stands; `ready` carries the downloads (each with its true times) and `missing`."""

    @abc.abstractmethod
    def open_download(self, download: Download) -> DownloadStream:
        """Stream one download (resolving a fresh URL); resumes with Range after a drop where possible."""

    @abc.abstractmethod
    def cleanup(self, ticket: dict[str, Any]) -> None:
        """Delete every server-side artefact of the ticket (exports, exported files, saved clips), whatever
        state it reached. Idempotent: already-gone things are fine. Raises VmsError only when something
        could not be removed (after trying everything), so the caller can try again later."""

    @abc.abstractmethod
    def remove_tagged(self, tag: str) -> int:
        """Delete for good every artefact carrying `tag` (found with the vendor's list APIs, every page),
        whatever state it reached; returns how many were removed (0 when none, or when the vendor creates
        none: then no call is made). Idempotent. Raises VmsError when something could not be listed or
        removed, so the caller can try again later."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release pooled connections."""


def split_window(start: datetime, end: datetime, limit: timedelta) -> list[Interval]:
    """[start, end] cut into consecutive pieces no longer than `limit`."""
    if end <= start:
        return []
    pieces = []
    cursor = start
    while cursor < end:
        piece_end = min(end, cursor + limit)
        pieces.append(Interval(cursor, piece_end))
        cursor = piece_end
    return pieces


def clip_to_window(intervals: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    """Intervals intersected with [start, end], merged where they touch, sorted."""
    clipped = sorted(
        Interval(max(i.start, start), min(i.end, end)) for i in intervals if i.end > start and i.start < end
    )
    merged: list[Interval] = []
    for interval in clipped:
        if merged and interval.start <= merged[-1].end:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, interval.end))
        else:
            merged.append(interval)
    return merged


def gaps(covered: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The parts of [start, end] not covered by `covered` (which must be sorted and merged)."""
    missing, cursor = [], start
    for interval in covered:
        if interval.start > cursor:
            missing.append(Interval(cursor, interval.start))
        cursor = max(cursor, interval.end)
    if cursor < end:
        missing.append(Interval(cursor, end))
    return missing
