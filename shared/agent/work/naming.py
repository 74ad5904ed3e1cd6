"""File names for delivered evidence: safe for any camera id, unique within a job, never failing.

A camera id is data, not a path: it may hold `/`, `\\`, `..`, control characters, any Unicode, or be
hundreds of characters long. The name keeps the id's safe characters (letters, digits, `.`, `_`, `-`),
bounded in length, and adds a short hash of the whole id whenever anything was changed, so two ids
that differ only in unsafe characters still get different names. Names are computed, never refused:
a naming problem can never stop a job halfway.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

MAX_ID_CHARS = 48
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_camera(camera_id: str) -> str:
    cleaned = _UNSAFE.sub("_", camera_id).strip("._") or "camera"
    if cleaned == camera_id and len(cleaned) <= MAX_ID_CHARS:
        return cleaned
    digest = hashlib.sha256(camera_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned[:MAX_ID_CHARS]}-{digest}"


def stamp(moment: datetime) -> str:
    """`20261130T161500Z`, with milliseconds (`20261130T161500.250Z`) when the time has them."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y%m%dT%H%M%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def media_name(camera_id: str, start: datetime, end: datetime) -> str:
    return f"{safe_camera(camera_id)}_{stamp(start)}_{stamp(end)}.mp4"


def thumbnail_name(camera_id: str, captured: datetime) -> str:
    return f"{safe_camera(camera_id)}_{stamp(captured)}.jpg"


DISCOVERY_NAME = "discovery.json"
