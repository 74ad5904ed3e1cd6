"""The cameras of one simulated account, seeded deterministically from a seed string.

Every property of a seeded camera follows from (seed, index), so a test can rely on the pattern:
every 7th camera is offline, every 5th has no latitude/longitude, every 11th has no recordings;
a third of the cameras (chosen by id) record continuously, the others miss 10 minutes every hour.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .intervals import Interval, clip, subtract
from .timeutil import DAY_MS, HOUR_MS, format_een

IdStyle = Literal["een", "rhombus", "verkada"]
RECORDING_DAYS = 7
GAP_MINUTES = 10
MAX_CAMERAS = 20_000

_AREAS = (
    "Lobby", "North Door", "South Door", "Parking Lot", "Loading Dock", "Warehouse Aisle", "Server Room",
    "Reception", "Stairwell", "Back Entrance", "Cafeteria", "Hallway", "Gate", "Storage", "Office",
)  # fmt: skip
_TIME_ZONES = (
    "America/Chicago", "America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Amsterdam",
    "Asia/Tokyo", "Australia/Sydney", "UTC",
)  # fmt: skip
_BASE_LATITUDE, _BASE_LONGITUDE = 41.8781, -87.6298


@dataclass
class Camera:
    id: str
    name: str
    online: bool
    time_zone: str
    latitude: float | None
    longitude: float | None
    azimuth: float | None
    floor: int | None
    bridge_id: str
    location_id: str
    serial: str
    created_ms: int
    recording_start_ms: int | None  # None: the camera never recorded
    recording_end_ms: int | None  # None: still recording (up to "now")
    gap_minutes: int  # minutes missing at the same place in every hour (0: continuous)
    gap_offset_minutes: int
    explicit_recordings: list[Interval] | None = None
    local_only: list[Interval] = field(default_factory=list)  # footage kept on the camera only (Rhombus)
    snapshot_bytes: int | None = None  # snapshots padded to this size (None: the configured default)
    bitrate_kbps: int | None = None  # this camera's footage bitrate (None: the configured BitrateKbps)
    export_seconds: float | None = None  # how long its exports/clips take (None: ExportDurationSeconds)

    @property
    def has_recordings(self) -> bool:
        if self.explicit_recordings is not None:
            return bool(self.explicit_recordings)
        return self.recording_start_ms is not None

    @property
    def has_position(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def summary(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Online": self.online,
            "HasRecordings": self.has_recordings,
            "HasPosition": self.has_position,
            "TimeZone": self.time_zone,
            "GapMinutesPerHour": 0 if self.explicit_recordings is not None else self.gap_minutes,
            "ExplicitRecordings": self.explicit_recordings is not None,
            "LocalOnly": intervals_json(self.local_only),
            "SnapshotBytes": self.snapshot_bytes,
        }


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def make_id(style: IdStyle, digest: bytes) -> str:
    """EEN: 8 lowercase hex digits starting with 10 (`1000a1b2`); Rhombus: a 22-character url-safe base64 uuid;
    Verkada: a canonical UUID."""
    if style == "een":
        return "10" + digest[:3].hex()
    if style == "verkada":
        return str(uuid.UUID(bytes=digest[:16]))
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def seed_camera(
    style: IdStyle, seed: str, index: int, anchor_ms: int, taken: set[str], *, plain: bool = False
) -> Camera:
    """The index-th camera of a seed; `plain` ignores the every-Nth patterns (offline, no position, no recordings)."""
    digest = _digest(seed, "camera", index)
    attempt = 0
    camera_id = make_id(style, digest)
    while camera_id in taken:
        attempt += 1
        camera_id = make_id(style, _digest(seed, "camera", index, attempt))
    online = plain or index % 7 != 6
    positioned = plain or index % 5 != 4
    recording_start = None if index % 11 == 10 and not plain else anchor_ms - RECORDING_DAYS * DAY_MS
    gaps = digest[4] % 3 != 0
    return Camera(
        id=camera_id,
        name=f"{_AREAS[digest[5] % len(_AREAS)]} {index + 1:03d}",
        online=online,
        time_zone=_TIME_ZONES[digest[6] % len(_TIME_ZONES)],
        latitude=round(_BASE_LATITUDE + (digest[7] - 128) / 2000, 6) if positioned else None,
        longitude=round(_BASE_LONGITUDE + (digest[8] - 128) / 2000, 6) if positioned else None,
        azimuth=None if index % 10 == 9 and not plain else round(digest[9] * 360 / 256, 1),
        floor=digest[10] % 4 if positioned else None,
        bridge_id="100" + digest[11:14].hex()[:5],
        location_id=make_id("rhombus", _digest(seed, "location", digest[14] % 3)),
        serial=digest[16:22].hex().upper(),
        created_ms=anchor_ms - 30 * DAY_MS - index * HOUR_MS,
        recording_start_ms=recording_start,
        recording_end_ms=None if online else anchor_ms - HOUR_MS,
        gap_minutes=GAP_MINUTES if gaps else 0,
        gap_offset_minutes=digest[12] % (60 - GAP_MINUTES),
    )


@dataclass
class CameraStore:
    """Thread-safe set of cameras in a stable order; seeded, then changed through the control API."""

    style: IdStyle
    seed: str
    count: int
    anchor_ms: int
    _cameras: dict[str, Camera] = field(default_factory=dict, repr=False)
    _added: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.reseed(self.seed, self.count)

    def reseed(self, seed: str, count: int) -> None:
        if not 0 <= count <= MAX_CAMERAS:
            raise ValueError(f"Count must be between 0 and {MAX_CAMERAS}")
        taken: set[str] = set()
        cameras: dict[str, Camera] = {}
        for index in range(count):
            camera = seed_camera(self.style, seed, index, self.anchor_ms, taken)
            taken.add(camera.id)
            cameras[camera.id] = camera
        with self._lock:
            self.seed, self.count, self._cameras, self._added = seed, count, cameras, 0

    def all(self) -> list[Camera]:
        with self._lock:
            return [replace(camera) for camera in self._cameras.values()]

    def get(self, camera_id: str) -> Camera | None:
        with self._lock:
            camera = self._cameras.get(camera_id)
            return None if camera is None else replace(camera)

    def add(self, changes: dict[str, Any]) -> Camera:
        """Adds a camera: online and recording (seeded gap pattern) unless `changes` say otherwise; its
        position is unknown unless `changes` give one; `changes["id"]` chooses its id (KeyError if taken)."""
        with self._lock:
            if changes.get("id") in self._cameras:
                raise KeyError(changes["id"])
            index = self.count + self._added
            self._added += 1
            camera = seed_camera(self.style, self.seed, index, self.anchor_ms, set(self._cameras), plain=True)
            unknown_position = {"latitude": None, "longitude": None, "azimuth": None, "floor": None}
            camera = replace(camera, **{**unknown_position, **changes})
            self._cameras[camera.id] = camera
            return replace(camera)

    def remove(self, camera_id: str) -> bool:
        with self._lock:
            return self._cameras.pop(camera_id, None) is not None

    def update(self, camera_id: str, **changes: Any) -> Camera | None:
        with self._lock:
            camera = self._cameras.get(camera_id)
            if camera is None:
                return None
            for name, value in changes.items():
                setattr(camera, name, value)
            return replace(camera)


def recorded_intervals(camera: Camera, start_ms: int, end_ms: int, now_ms: int) -> list[Interval]:
    """The camera's recordings within [start, end), never beyond `now` (the simulator clock)."""
    end_ms = min(end_ms, now_ms)
    if end_ms <= start_ms:
        return []
    if camera.explicit_recordings is not None:
        return clip(camera.explicit_recordings, start_ms, end_ms)
    if camera.recording_start_ms is None:
        return []
    lo = max(start_ms, camera.recording_start_ms)
    hi = min(end_ms, camera.recording_end_ms if camera.recording_end_ms is not None else end_ms)
    if hi <= lo:
        return []
    if not camera.gap_minutes:
        return [(lo, hi)]
    offset, length = camera.gap_offset_minutes * 60_000, camera.gap_minutes * 60_000
    gaps = [(hour + offset, hour + offset + length) for hour in range(lo - lo % HOUR_MS, hi, HOUR_MS)]
    return subtract([(lo, hi)], gaps)


def recording_spans(camera: Camera, start_ms: int, end_ms: int, now_ms: int) -> list[Interval]:
    """The camera's whole recordings that overlap [start, end), not cut at the window's edges (at most a
    day beyond them, never beyond `now`): what a VMS that does not clip its interval listing answers."""
    wide = recorded_intervals(camera, start_ms - DAY_MS, end_ms + DAY_MS, now_ms)
    return [(s, e) for s, e in wide if s < end_ms and e > start_ms]


def intervals_json(intervals: list[Interval]) -> list[list[str]]:
    return [[format_een(s), format_een(e)] for s, e in intervals]
