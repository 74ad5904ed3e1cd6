"""The simulator clock: real time plus an offset that the control API can advance.

Locks and access tokens expire on this clock. JWT assertions and SAS tokens are checked against real
time (the agent's clock and Azurite's clock do not move when the simulator clock does).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_utc(moment: datetime, *, milliseconds: bool = True) -> str:
    """ISO-8601 UTC with a trailing Z, e.g. 2024-05-01T12:00:00.123Z."""
    moment = moment.astimezone(UTC)
    if milliseconds:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """Parses ISO-8601 with Z or an explicit offset; naive times are refused (ValueError)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("time has no UTC offset (expected e.g. 2024-05-01T12:00:00Z)")
    return moment.astimezone(UTC)


class SimClock:
    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return utc_now() + self._offset

    @property
    def offset_seconds(self) -> float:
        with self._lock:
            return self._offset.total_seconds()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def set_offset(self, seconds: float) -> None:
        with self._lock:
            self._offset = timedelta(seconds=seconds)

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta()
