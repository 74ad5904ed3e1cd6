"""Fault injection: scripted error answers, added latency and already-expired SAS tokens."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

OPERATIONS = (
    "token", "list_jobs", "lock", "renew", "progress", "complete", "cancel", "release",
    "initialize_upload", "complete_media", "complete_discovery", "complete_thumbnail",
)  # fmt: skip


@dataclass
class StatusFault:
    """The next `remaining` calls of `operation` answer `status`.

    With after_processing the call takes effect first and only its answer is replaced (a lost response).
    """

    operation: str
    status: int
    remaining: int
    retry_after: int | None = None
    detail: str | None = None
    after_processing: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "Kind": "Status", "Operation": self.operation, "Status": self.status, "Count": self.remaining,
            "RetryAfter": self.retry_after, "Detail": self.detail, "AfterProcessing": self.after_processing,
        }  # fmt: skip

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    @property
    def message(self) -> str:
        return self.detail or f"injected fault: {self.operation} answers {self.status}"


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: list[StatusFault] = []
        self._latency_ms: dict[str, int] = {}
        self._expired_sas = 0

    def add_status(self, fault: StatusFault) -> None:
        with self._lock:
            self._status.append(fault)

    def set_latency(self, operation: str, latency_ms: int) -> None:
        with self._lock:
            if latency_ms > 0:
                self._latency_ms[operation] = latency_ms
            else:
                self._latency_ms.pop(operation, None)

    def add_expired_sas(self, count: int) -> None:
        with self._lock:
            self._expired_sas += count

    def take_status(self, operation: str) -> StatusFault | None:
        """Consumes one use of the oldest status fault scripted for this operation."""
        with self._lock:
            for fault in self._status:
                if fault.operation == operation:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._status.remove(fault)
                    return fault
            return None

    def latency_seconds(self, operation: str) -> float:
        with self._lock:
            return self._latency_ms.get(operation, 0) / 1000

    def take_expired_sas(self) -> bool:
        with self._lock:
            if self._expired_sas > 0:
                self._expired_sas -= 1
                return True
            return False

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "Status": [fault.to_json() for fault in self._status],
                "LatencyMs": dict(self._latency_ms),
                "ExpiredSas": self._expired_sas,
            }

    def reset(self) -> None:
        with self._lock:
            self._status.clear()
            self._latency_ms.clear()
            self._expired_sas = 0
