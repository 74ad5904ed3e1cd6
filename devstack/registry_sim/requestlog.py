"""The request log: what the agent called and what it was answered, with no secrets.

Only allow-listed query parameters keep their values; headers and bodies are never stored.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .clock import format_utc, utc_now

ALLOWED_QUERY_PARAMETERS = frozenset({"types"})


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, v if k.lower() in ALLOWED_QUERY_PARAMETERS else "REDACTED") for k, v in pairs])


@dataclass(frozen=True)
class LoggedRequest:
    index: int
    time_utc: str
    method: str
    path: str
    operation: str
    status: int
    duration_ms: float
    job_id: str | None
    range: str | None = None
    """The Range header of a download (the VMS simulator); not logged when absent."""

    def to_json(self) -> dict[str, Any]:
        entry = {
            "Index": self.index, "TimeUtc": self.time_utc, "Method": self.method, "Path": self.path,
            "Operation": self.operation, "Status": self.status, "DurationMs": self.duration_ms,
            "JobId": self.job_id,
        }  # fmt: skip
        if self.range is not None:
            entry["Range"] = self.range
        return entry


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def add(
        self,
        method: str,
        path: str,
        query: str,
        operation: str,
        status: int,
        duration_s: float,
        job_id: str | None,
        range_header: str | None = None,
    ) -> None:
        full_path = f"{path}?{redact_query(query)}" if query else path
        with self._lock:
            self._entries.append(
                LoggedRequest(
                    len(self._entries), format_utc(utc_now()), method, full_path, operation, status,
                    round(duration_s * 1000, 1), job_id, range_header,
                )
            )  # fmt: skip

    def since(self, index: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [entry.to_json() for entry in self._entries[max(index, 0) :]]

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
