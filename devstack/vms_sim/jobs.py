"""Asynchronous exports (EEN export jobs, Rhombus clips) that progress on the simulator clock.

A job is pending for the first tenth of its duration, then running with a progress of 0..1, then
finished: succeeded, or failed (by fault, or nothing recorded). Vendor modules translate the phase
into their own state names.

An EEN export that succeeds leaves its files in the customer's archive, as EEN does: in the read-only
"downloads" folder for two weeks when it was created with `autoDelete: true` (the API cannot delete
them), otherwise among the archive's files, from where a delete moves them to the recycle bin and a
second delete removes them for good. A job deleted before it finished leaves no file. Deleting a job
never deletes its files. `leftovers()` is what the customer would still find in their account.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from .intervals import Interval
from .streams import ConcatStream, Stream

PENDING_SHARE = 0.1
Folder = Literal["archive", "downloads"]
FileState = Literal["present", "recycled", "purged"]


class Phase(Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class OutputFile:
    """One file a job produces (an EEN export file in the archive)."""

    id: str
    name: str
    stream: Stream
    interval: Interval
    folder: Folder = "archive"
    directory: str = "/"
    state: FileState = "present"


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
    content: Stream | None = None  # the whole result as one download (a Rhombus clip)
    deleted_ms: int | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_ms is not None

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

    def produced_files(self, now_ms: int) -> bool:
        """True once the job has succeeded, unless it was deleted before it finished."""
        if self.fails or now_ms < self.finished_ms():
            return False
        return self.deleted_ms is None or self.deleted_ms >= self.finished_ms()

    @property
    def name(self) -> str:
        """What the customer sees it called: an EEN export's `info.name`, a Rhombus clip's `title`."""
        info = self.details.get("info")
        name = info.get("name") if isinstance(info, dict) else self.details.get("title")
        return name if isinstance(name, str) else ""

    @property
    def stream(self) -> Stream:
        """The whole result: the clip's content, or every file back to back."""
        return self.content if self.content is not None else ConcatStream(tuple(f.stream for f in self.files))


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

    def delete(self, job_id: str, now_ms: int) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.deleted:
                return False
            job.deleted_ms = now_ms
            return True

    def file(self, file_id: str, now_ms: int) -> tuple[Job, OutputFile] | None:
        """A file that exists (in the archive, the downloads folder or the recycle bin) at `now_ms`."""
        with self._lock:
            found = self._files.get(file_id)
        if found is None or found[1].state == "purged" or not found[0].produced_files(now_ms):
            return None
        return found

    def files(self, now_ms: int) -> list[tuple[Job, OutputFile]]:
        """Every file that exists at `now_ms`, oldest job first."""
        with self._lock:
            candidates = list(self._files.values())
        return [(j, f) for j, f in candidates if f.state != "purged" and j.produced_files(now_ms)]

    def set_state(self, file_id: str, state: FileState) -> None:
        with self._lock:
            self._files[file_id][1].state = state

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def live_count(self) -> int:
        with self._lock:
            return sum(not job.deleted for job in self._jobs.values())

    def leftovers(self, now_ms: int) -> list[dict[str, Any]]:
        """What stays in the customer's account: jobs (saved clips) not deleted, files not purged."""
        with self._lock:
            jobs = [job for job in self._jobs.values() if not job.deleted]
        found: list[dict[str, Any]] = [
            {"Kind": "job", "Id": job.id, "CameraId": job.camera_id, "Name": job.name} for job in jobs
        ]
        for job, output in self.files(now_ms):
            where = "recycle bin" if output.state == "recycled" else output.folder
            found.append({"Kind": "file", "Id": output.id, "Name": output.name, "Where": where, "JobId": job.id})
        return found

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._files.clear()


def new_id() -> str:
    return str(uuid.uuid4())
