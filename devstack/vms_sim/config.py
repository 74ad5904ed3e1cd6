"""Run-time settings of one VMS profile (changed through /_sim/config, PascalCase names)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields, replace
from typing import Any

JOB_VOCABULARIES = ("spec", "notes")
NEXT_PAGE_ON_LAST = ("empty", "null")
ZERO_ALLOWED = frozenset({"ExportDurationSeconds", "DownloadBytesPerSecond", "SnapshotBytes"})
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024


@dataclass
class VmsConfig:
    bitrate_kbps: int = 2000
    export_duration_seconds: float = 20.0  # sim-clock time an EEN export / Rhombus clip takes
    token_lifetime_seconds: int = 43200  # EEN access tokens
    media_url_ttl_seconds: int = 7200  # signed media URLs
    default_page_size: int = 100
    max_page_size: int = 500
    job_states: str = "spec"  # EEN job vocabulary: spec (pending|started|success|failure) or notes
    next_page_on_last: str = "empty"  # EEN nextPageToken on the last page: "" (empty) or null
    chunked_downloads: bool = False  # stream without Content-Length
    download_bytes_per_second: int = 0  # per-connection rate cap of every media download, as a CDN's (0: none)
    unclipped_media_intervals: bool = False  # EEN /media lists whole recordings, even beyond the query window
    snapshot_bytes: int = 0  # every snapshot padded to this size (0: natural size); a camera's own wins
    recorded_image_rate_per_second: int = 5  # EEN recordedImage.jpeg?type=main; more → 429
    max_exports: int = 100  # EEN export jobs kept by the account; more → 429
    max_export_seconds: int = 8 * 3600  # EEN export period limit
    max_clip_seconds: int = 3600  # Rhombus spliceV3 total duration limit
    revoke_previous_access_token: bool = True  # EEN: a refresh invalidates the previous access token
    verkada_token_seconds: int = 1800  # Verkada API tokens and streaming JWTs (30 minutes)
    segment_seconds: int = 4  # Verkada HLS segment length (on the epoch grid)
    thumbnail_interval_seconds: int = 300  # Verkada thumbnail cache: one image per camera this often
    rate_limit_per_minute: int = 300  # Verkada: requests per organisation per minute
    rate_limit_cooldown_seconds: int = 5  # Verkada: every request is refused this long after a 429
    rate_limit_streaming: bool = False  # Verkada: whether the HLS routes count against the limit
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def copy(self) -> VmsConfig:
        with self._lock:
            return replace(self, _lock=threading.Lock())

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {_pascal(f.name): getattr(self, f.name) for f in _settings()}

    def update(self, changes: dict[str, Any]) -> None:
        """Applies PascalCase changes; ValueError names the first bad one (nothing is applied then)."""
        by_name = {_pascal(f.name): f for f in _settings()}
        validated: dict[str, Any] = {}
        for name, value in changes.items():
            setting = by_name.get(name)
            if setting is None:
                raise ValueError(f"unknown setting {name!r}; known: {', '.join(by_name)}")
            validated[setting.name] = _validate(name, setting.default, value)
        merged = {**{f.name: getattr(self, f.name) for f in _settings()}, **validated}
        if merged["default_page_size"] > merged["max_page_size"]:
            raise ValueError("DefaultPageSize must not exceed MaxPageSize")
        with self._lock:
            for attr, value in validated.items():
                setattr(self, attr, value)

    def restore(self, other: VmsConfig) -> None:
        with self._lock:
            for setting in _settings():
                setattr(self, setting.name, getattr(other, setting.name))


def _settings() -> list[Any]:
    return [f for f in fields(VmsConfig) if not f.name.startswith("_")]


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _validate(name: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if isinstance(default, str):
        allowed = JOB_VOCABULARIES if name == "JobStates" else NEXT_PAGE_ON_LAST
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if isinstance(default, int) and not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    minimum = 0 if name in ZERO_ALLOWED else 1
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}")
    if name == "SnapshotBytes" and value > MAX_SNAPSHOT_BYTES:
        raise ValueError(f"SnapshotBytes must be at most {MAX_SNAPSHOT_BYTES}")
    return value
