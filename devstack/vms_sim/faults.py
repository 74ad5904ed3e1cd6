"""Scripted faults of one VMS profile.

Status answers and latency reuse the Registry simulator's FaultInjector; on top of it come the
download behaviours (trickle, drop after N bytes, chunked, ranges ignored), export/clip outcomes, and
what happens to the answer of a call that creates an export or clip (the crash window: the artefact
exists, the client has not heard of it). Faults with a Count are used up one per affected call; download
behaviours without a Count last until cleared.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from devstack.registry_sim.faults import FaultInjector, StatusFault

StreamKind = Literal["Trickle", "Drop", "Chunked", "IgnoreRange"]
JobKind = Literal["ExportFailure", "ExportPartial"]
STREAM_KINDS: tuple[StreamKind, ...] = ("Trickle", "Drop", "Chunked", "IgnoreRange")
JOB_KINDS: tuple[JobKind, ...] = ("ExportFailure", "ExportPartial")
CreateKind = Literal["DropAfterCreate", "HoldAfterCreate"]
CREATE_KINDS: tuple[CreateKind, ...] = ("DropAfterCreate", "HoldAfterCreate")
MAX_HOLD_SECONDS = 600


@dataclass
class StreamFault:
    kind: StreamKind
    value: int  # bytes per second (Trickle), bytes before the drop (Drop), unused (Chunked, IgnoreRange)
    remaining: int | None  # None: until cleared

    def to_json(self) -> dict[str, Any]:
        names = {"Trickle": "BytesPerSecond", "Drop": "AfterBytes", "Chunked": None, "IgnoreRange": None}
        body: dict[str, Any] = {"Kind": self.kind, "Count": self.remaining}
        if (name := names[self.kind]) is not None:
            body[name] = self.value
        return body


@dataclass
class CreateFault:
    """The answer to the next `remaining` create calls (EEN POST /exports, Rhombus spliceV3), given after
    the export or clip was created: dropped (connection closed, no answer), or held until released or
    for `seconds`, then given."""

    kind: CreateKind
    remaining: int
    seconds: int | None = None  # HoldAfterCreate: answer after this long if not released (None: MAX_HOLD_SECONDS)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"Kind": self.kind, "Count": self.remaining}
        if self.kind == "HoldAfterCreate":
            body["Seconds"] = self.seconds
        return body


@dataclass(frozen=True)
class DownloadBehaviour:
    """How one download is served."""

    chunked: bool = False
    trickle_bytes_per_second: int | None = None
    drop_after_bytes: int | None = None
    max_bytes_per_second: int | None = None  # the configured per-connection cap (None: unlimited)
    ignore_range: bool = False  # a server without byte ranges: the whole file, 200, no Accept-Ranges


class VmsFaults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = FaultInjector()  # status answers and latency per operation
        self._streams: list[StreamFault] = []
        self._jobs: dict[JobKind, int] = dict.fromkeys(JOB_KINDS, 0)
        self._create: CreateFault | None = None
        self._release = threading.Event()
        self._held = 0
        self._held_total = 0

    # status and latency ------------------------------------------------------------------

    def add_status(self, fault: StatusFault) -> None:
        self.calls.add_status(fault)

    def take_status(self, operation: str) -> StatusFault | None:
        return self.calls.take_status(operation)

    def set_latency(self, operation: str, latency_ms: int) -> None:
        self.calls.set_latency(operation, latency_ms)

    def latency_seconds(self, operation: str) -> float:
        return self.calls.latency_seconds(operation)

    # downloads ----------------------------------------------------------------------------

    def add_stream(self, fault: StreamFault) -> None:
        with self._lock:
            self._streams = [f for f in self._streams if f.kind != fault.kind] + [fault]

    def take_download_behaviour(self, chunked_by_config: bool, rate_cap: int = 0) -> DownloadBehaviour:
        """The behaviour of the next download; uses up one Count of each fault that applies.
        `rate_cap` is the configured bytes per second per connection (0: unlimited)."""
        with self._lock:
            active = {fault.kind: fault for fault in self._streams}
            for fault in active.values():
                if fault.remaining is not None:
                    fault.remaining -= 1
            self._streams = [f for f in self._streams if f.remaining is None or f.remaining > 0]
        trickle, drop = active.get("Trickle"), active.get("Drop")
        return DownloadBehaviour(
            chunked=chunked_by_config or "Chunked" in active,
            trickle_bytes_per_second=trickle.value if trickle else None,
            drop_after_bytes=drop.value if drop else None,
            max_bytes_per_second=rate_cap or None,
            ignore_range="IgnoreRange" in active,
        )

    # exports and clips --------------------------------------------------------------------

    def add_job_fault(self, kind: JobKind, count: int) -> None:
        with self._lock:
            self._jobs[kind] += count

    def take_job_fault(self, kind: JobKind) -> bool:
        with self._lock:
            if self._jobs[kind] > 0:
                self._jobs[kind] -= 1
                return True
            return False

    # the answer of a create call -------------------------------------------------------

    def set_create_fault(self, fault: CreateFault) -> None:
        """Replaces any create fault still pending."""
        with self._lock:
            self._create = fault

    def take_create_fault(self) -> CreateFault | None:
        with self._lock:
            fault = self._create
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._create = None
            return fault

    def hold(self, seconds: int | None) -> bool:
        """Blocks the calling request until `release()` or `seconds` (MAX_HOLD_SECONDS at most); True when
        released."""
        limit = min(seconds or MAX_HOLD_SECONDS, MAX_HOLD_SECONDS)
        with self._lock:
            release = self._release
            self._held += 1
            self._held_total += 1
        try:
            deadline = time.monotonic() + limit
            return release.wait(max(0.0, deadline - time.monotonic()))
        finally:
            with self._lock:
                self._held -= 1

    def release(self) -> int:
        """Lets every held answer go; returns how many were held."""
        with self._lock:
            held, release = self._held, self._release
            self._release = threading.Event()
        release.set()
        return held

    def to_json(self) -> dict[str, Any]:
        calls = self.calls.to_json()
        with self._lock:
            return {
                "Status": calls["Status"],
                "LatencyMs": calls["LatencyMs"],
                "Downloads": [fault.to_json() for fault in self._streams],
                **{kind: count for kind, count in self._jobs.items()},
                "AfterCreate": None if self._create is None else self._create.to_json(),
                "Held": self._held,
                "HeldTotal": self._held_total,
            }

    def reset(self) -> None:
        self.calls.reset()
        with self._lock:
            self._streams.clear()
            self._jobs = dict.fromkeys(JOB_KINDS, 0)
            self._create = None
            self._held_total = 0
        self.release()
