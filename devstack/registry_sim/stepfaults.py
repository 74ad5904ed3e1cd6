"""Faults that fire at a chosen step: the Nth call of a Registry route, or a storage step of an upload.

Storage steps (Put Block, Put Block List, Put Blob) are seen by the simulator's upload proxy, which
InitializeUpload hands out instead of the direct Azurite SAS URI only while a storage fault that could
match the new file is armed (arm it before the file's InitializeUpload).

Actions, each carried out before the call is processed or, with `AfterProcessing`, after it was
processed and before its answer leaves:
- LoseLock: the job's lock is taken over by another agent, as if it expired and was locked again;
  every later call under the old lock token answers 409. The call itself then goes on.
- Status: answer `Status` (Registry routes: a problem document; storage: an Azure error with
  `ErrorCode`), with optional `Headers` such as Retry-After. Before processing, the call has no effect.
- Hold: keep the request waiting until a control call releases it (or `HoldSeconds` pass), then go on.
- Drop: close the connection without an answer.
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flask import Response, request

from .bodies import Body
from .clock import format_utc, utc_now
from .problems import ProblemError
from .store import JobStore
from .transforms import parse_headers
from .triggers import Trigger

STORAGE_STEPS = ("PutBlock", "PutBlockList", "PutBlob")
ACTIONS = ("LoseLock", "Status", "Hold", "Drop")
JOBLESS_OPERATIONS = frozenset({"token", "list_jobs"})
DEFAULT_HOLD_SECONDS = 60.0
MAX_HOLD_SECONDS = 600.0

ErrorResponse = Callable[[int, str, dict[str, str | None]], Response]


@dataclass
class StepFault:
    id: int
    step: str
    """A Registry operation (e.g. `complete_media`) or a storage step (STORAGE_STEPS)."""
    action: str
    trigger: Trigger
    job_id: str | None = None
    file_name: str | None = None
    """Storage steps: a glob on the file name given to InitializeUpload (e.g. `cam1_*`)."""
    status: int | None = None
    error_code: str | None = None
    headers: dict[str, str | None] = field(default_factory=dict)
    after_processing: bool = False
    hold_seconds: float = DEFAULT_HOLD_SECONDS
    detail: str | None = None

    @property
    def storage(self) -> bool:
        return self.step in STORAGE_STEPS

    def matches_file(self, job_id: str, file_name: str) -> bool:
        if self.job_id is not None and self.job_id != job_id:
            return False
        return self.file_name is None or fnmatch.fnmatchcase(file_name, self.file_name)

    @property
    def message(self) -> str:
        return self.detail or f"injected fault #{self.id}: {self.step} answers {self.status}"

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id, "Step": self.step, "Action": self.action, "JobId": self.job_id,
            "FileName": self.file_name, **self.trigger.to_json(), "Status": self.status,
            "ErrorCode": self.error_code, "Headers": self.headers, "AfterProcessing": self.after_processing,
            "HoldSeconds": self.hold_seconds, "Detail": self.detail,
        }  # fmt: skip


@dataclass
class HeldRequest:
    id: int
    fault_id: int
    where: str
    job_id: str | None
    file_id: str | None
    since: datetime
    released: threading.Event = field(default_factory=threading.Event)

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id, "FaultId": self.fault_id, "Where": self.where, "JobId": self.job_id,
            "FileId": self.file_id, "SinceUtc": format_utc(self.since),
        }  # fmt: skip


class StepFaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[StepFault] = []
        self._holds: dict[int, HeldRequest] = {}
        self._fault_ids = itertools.count(1)
        self._hold_ids = itertools.count(1)

    def add(self, body: Body, operations: tuple[str, ...]) -> StepFault:
        fault = _parse(body, operations)
        with self._lock:
            fault.id = next(self._fault_ids)
            self._faults.append(fault)
        return fault

    def take_registry(self, operation: str, job_id: str | None) -> StepFault | None:
        """Counts a call of a Registry route; returns the oldest fault that fires on it."""
        with self._lock:
            due = [
                fault
                for fault in self._faults
                if fault.step == operation
                and (fault.job_id is None or fault.job_id == job_id)
                and fault.trigger.observe()
            ]
            return self._fire(due)

    def take_storage(self, step: str, job_id: str, file_id: str, file_name: str) -> StepFault | None:
        """Counts a storage step of one file (per-file numbering); returns the oldest fault that fires."""
        with self._lock:
            due = [
                fault
                for fault in self._faults
                if fault.step == step and fault.matches_file(job_id, file_name) and fault.trigger.observe(file_id)
            ]
            return self._fire(due)

    @staticmethod
    def _fire(due: list[StepFault]) -> StepFault | None:
        if not due:
            return None
        due[0].trigger.fire()
        return due[0]

    def wants_proxy(self, job_id: str, file_name: str) -> bool:
        """Whether a new file's upload must go through the proxy: a storage fault could fire on it."""
        with self._lock:
            return any(
                f.storage and not f.trigger.exhausted and f.matches_file(job_id, file_name) for f in self._faults
            )

    def hold(self, fault: StepFault, where: str, job_id: str | None, file_id: str | None) -> bool:
        """Blocks this request until released; False when HoldSeconds passed first."""
        with self._lock:
            held = HeldRequest(next(self._hold_ids), fault.id, where, job_id, file_id, utc_now())
            self._holds[held.id] = held
        try:
            return held.released.wait(fault.hold_seconds)
        finally:
            with self._lock:
                self._holds.pop(held.id, None)

    def holds(self) -> list[dict[str, Any]]:
        with self._lock:
            return [held.to_json() for held in self._holds.values()]

    def release(self, hold_id: int | None = None) -> int:
        """Lets held requests go on (one, or all); returns how many were released."""
        with self._lock:
            chosen = [h for h in self._holds.values() if hold_id is None or h.id == hold_id]
            for held in chosen:
                held.released.set()
                del self._holds[held.id]
            return len(chosen)

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
        self.release()


class FaultSite(Protocol):
    """What carrying out a fault needs from the simulator (simulator.py), so neither imports the other."""

    store: JobStore
    step_faults: StepFaultInjector


def carry_out(
    sim: FaultSite,
    fault: StepFault,
    *,
    where: str,
    job_id: str | None,
    file_id: str | None = None,
    error_response: ErrorResponse,
) -> tuple[Response | None, str]:
    """Does the fault's action; returns the answer that replaces the call's (Status, Drop) or None to go on,
    and a one-line account for the job history."""
    job_id = job_id or fault.job_id
    label = f"fault #{fault.id} at {where}" + (" (after processing)" if fault.after_processing else "")
    if fault.action == "LoseLock":
        assert job_id is not None  # checked when armed
        outcome = sim.store.take_over_lock(job_id, f"injected by {label}")
        return None, f"{label}: {outcome}"
    if fault.action == "Hold":
        released = sim.step_faults.hold(fault, where, job_id, file_id)
        return None, f"{label}: held until " + ("released" if released else f"{fault.hold_seconds:g} s passed")
    if fault.action == "Drop":
        return dropped_connection(), f"{label}: connection dropped"
    assert fault.status is not None
    return error_response(fault.status, fault.message, fault.headers), f"{label}: answered {fault.status}"


def dropped_connection() -> Response:
    """A response that sends nothing: the connection closes, as when a server or proxy dies mid-call."""
    connection = request.environ.get("werkzeug.socket")

    def body() -> Iterator[bytes]:
        if connection is not None:  # otherwise werkzeug would wait on this keep-alive connection for more
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        # werkzeug treats a ConnectionError as a dropped connection: it writes nothing more
        raise ConnectionAbortedError("simulated dropped connection")
        yield b""  # pragma: no cover - makes this a generator

    return Response(body())


def _parse(body: Body, operations: tuple[str, ...]) -> StepFault:
    step = body.required_string("Step")
    if step not in STORAGE_STEPS and step not in operations:
        raise ProblemError(400, f"Step must be one of {', '.join(STORAGE_STEPS + operations)}")
    action = body.required_string("Action")
    if action not in ACTIONS:
        raise ProblemError(400, f"Action must be one of {', '.join(ACTIONS)}")
    job_id = body.string("JobId", required=False)
    file_name = body.string("FileName", required=False)
    if file_name is not None and step not in STORAGE_STEPS:
        raise ProblemError(400, "FileName only applies to storage steps")
    if action == "LoseLock" and step in JOBLESS_OPERATIONS and job_id is None:
        raise ProblemError(400, f"LoseLock on {step} needs a JobId (the call names no job)")
    status = None
    if action == "Status":
        status = body.integer("Status", minimum=100)
        if status > 599:
            raise ProblemError(400, "Status must be an HTTP status code")
    hold_seconds = body.raw("HoldSeconds")
    if hold_seconds is None:
        hold_seconds = DEFAULT_HOLD_SECONDS
    elif isinstance(hold_seconds, bool) or not isinstance(hold_seconds, int | float) or hold_seconds <= 0:
        raise ProblemError(400, "HoldSeconds must be a positive number")
    after = body.raw("AfterProcessing")
    if after is not None and not isinstance(after, bool):
        raise ProblemError(400, "AfterProcessing must be true or false")
    return StepFault(
        id=0,
        step=step,
        action=action,
        trigger=Trigger.from_body(body),
        job_id=job_id,
        file_name=file_name,
        status=status,
        error_code=body.string("ErrorCode", required=False),
        headers=parse_headers(body.raw("Headers")),
        after_processing=bool(after),
        hold_seconds=min(float(hold_seconds), MAX_HOLD_SECONDS),
        detail=body.string("Detail", required=False),
    )
