"""Asynchronous exports (EEN export jobs, Rhombus clips) that progress on the simulator clock.

A job is pending for the first tenth of its duration, then running with a progress of 0..1, then
finished: succeeded with one output per recorded part, or failed (by fault, or nothing recorded).
Vendor modules translate the phase into their own state names.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .intervals import Interval
from .streams import ConcatStream, SyntheticStream

PENDING_SHARE = 0.1


class Phase(Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class OutputFile:
    """One downloadable result of a job (an EEN archive file)."""

    id: str
    name: str
    stream: SyntheticStream
    interval: Interval
    deleted: bool = False


@dataclass
class Job:
    id: str
    camera_id: str
    start_ms: int
    end_ms: int
    created_ms: int
    duration_ms: int
    fails: bool
    recorded: list[Interval]  # what the result contains
    missing: list[Interval]  # what of the period it lacks (gaps, or a partial-export fault)
    files: list[OutputFile]
    details: dict[str, Any] = field(default_factory=dict)  # vendor fields (request body, title…)
    failure_reason: str = ""
    deleted: bool = False

    def phase(self, now_ms: int) -> tuple[Phase, float]:
        """(phase, progress 0..1) at `now_ms`."""
        elapsed = now_ms - self.created_ms
        if elapsed >= self.duration_ms:
            return (Phase.FAILED, 0.0) if self.fails else (Phase.SUCCEEDED, 1.0)
        pending = self.duration_ms * PENDING_SHARE
        if elapsed < pending:
            return Phase.PENDING, 0.0
        return Phase.RUNNING, min((elapsed - pending) / (self.duration_ms - pending), 0.99)

    def finished_ms(self) -> int:
        return self.created_ms + self.duration_ms

    @property
    def stream(self) -> ConcatStream:
        """All recorded parts back to back (a Rhombus clip)."""
        return ConcatStream(tuple(f.stream for f in self.files))


class JobStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._files: dict[str, tuple[Job, OutputFile]] = {}

    def add(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            for output in job.files:
                self._files[output.id] = (job, output)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None or job.deleted else job

    def delete(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.deleted:
                return False
            job.deleted = True
            return True

    def file(self, file_id: str) -> tuple[Job, OutputFile] | None:
        with self._lock:
            found = self._files.get(file_id)
            return None if found is None or found[1].deleted else found

    def delete_file(self, file_id: str) -> bool:
        with self._lock:
            found = self._files.get(file_id)
            if found is None or found[1].deleted:
                return False
            found[1].deleted = True
            return True

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def live_count(self) -> int:
        with self._lock:
            return sum(not job.deleted for job in self._jobs.values())

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._files.clear()


def new_id() -> str:
    return str(uuid.uuid4())
