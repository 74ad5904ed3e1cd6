"""Time on the wire: milliseconds since the epoch inside, EEN-style ISO-8601 strings outside.

EEN writes `2026-11-24T05:00:00.000+00:00` and refuses `Z` (and naive times) on its timestamp query
parameters and export periods, so the strict parser below is what the EEN profile uses. The control
API is lenient (`Z` or an offset).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_EXPLICIT_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}:\d{2}$")


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def format_een(ms: int) -> str:
    """2026-11-24T05:00:00.000+00:00 (milliseconds, explicit UTC offset), as EEN answers."""
    moment = from_ms(ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def parse_een(text: str) -> int:
    """Parses an EEN timestamp; only an explicit numeric offset is accepted (ValueError otherwise)."""
    if not _EXPLICIT_OFFSET.match(text):
        raise ValueError(
            f"{text!r} is not an ISO 8601 timestamp with an explicit offset such as 2024-03-15T07:59:22.946+00:00"
        )
    return to_ms(datetime.fromisoformat(text))


def parse_iso(text: str) -> int:
    """Lenient ISO-8601 (Z or an offset) for the control API; naive times are refused (ValueError)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return to_ms(moment)


def floor_hour(ms: int) -> int:
    return ms - ms % HOUR_MS
