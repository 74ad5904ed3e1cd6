"""Jobs, locks and files: the Registry's state machine.

Available --lock--> Locked --complete--> Completed | PartiallyCompleted | Failed
                      |  \\--cancel--> Canceled
                      |---release / lock expired--> Available (progress lost)

Every public method takes the store lock; none does I/O, so the lock is never held during a blob
download. Lock expiry is applied lazily, on the simulator clock, whenever a job is looked at.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .clock import SimClock, format_utc, parse_utc, utc_now
from .config import SimConfig
from .problems import ProblemError

JOB_TYPES = ("mediarequest", "discovery", "thumbnail")
AVAILABLE, LOCKED, CANCELED = "Available", "Locked", "Canceled"
COMPLETION_STATES = ("Completed", "PartiallyCompleted", "Failed")
TERMINAL_STATES = (*COMPLETION_STATES, CANCELED)
# which Complete* call finishes a file of which job type
FILE_KIND_BY_JOB_TYPE = {"mediarequest": "media", "discovery": "discovery", "thumbnail": "thumbnail"}
_PAST = {"complete": "completed", "cancel": "canceled", "release": "released"}
OTHER_AGENT_ID = "simulated-other-agent"
"""Who holds a job's lock after a LoseLock fault: an agent that never calls back (its lock just expires)."""


@dataclass
class Lock:
    token: str
    agent_id: str
    expires: datetime

    def to_json(self, job_id: str) -> dict[str, str]:
        return {"JobId": job_id, "LockToken": self.token, "LockExpirationUtc": format_utc(self.expires)}


@dataclass
class LockSpan:
    """One lock of a job, from the lock call to its end, for the control API's lock history."""

    token: str
    agent_id: str
    locked: datetime
    locked_host: datetime
    ended: datetime | None = None
    ended_host: datetime | None = None
    ending: str | None = None
    """released, completed, canceled, expired or taken over; None while held."""

    def end(self, moment: datetime, ending: str, host_moment: datetime | None = None) -> None:
        """Ended at `moment` (simulator clock), `host_moment` on the hosts' clock (default: now)."""
        if self.ending is None:
            self.ended, self.ended_host, self.ending = moment, host_moment or utc_now(), ending

    def to_json(self) -> dict[str, Any]:
        def utc(moment: datetime | None) -> str | None:
            return None if moment is None else format_utc(moment)

        return {
            "LockToken": self.token, "AgentId": self.agent_id, "LockedUtc": utc(self.locked),
            "LockedHostUtc": utc(self.locked_host), "EndedUtc": utc(self.ended),
            "EndedHostUtc": utc(self.ended_host), "Ending": self.ending,
        }  # fmt: skip


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str
    size: int | None = None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"Ok": self.ok, "Reason": self.reason, "Size": self.size, "Sha256": self.sha256}


@dataclass
class FileRecord:
    file_id: str
    file_name: str
    content_type: str
    blob_name: str
    created: datetime
    completed_kind: str | None = None
    completed_token: str | None = None
    completion_fields: dict[str, Any] = field(default_factory=dict)
    verification: Verification | None = None
    proxied: bool = False
    """The ticket's URI is the simulator's upload proxy (a storage fault was armed for this file)."""
    storage_requests: list[dict[str, Any]] = field(default_factory=list)
    """What the upload proxy saw, in order (proxied files only)."""

    def to_json(self, read_uri: str) -> dict[str, Any]:
        """The control API's view, with a read-only SAS link to the (encrypted) blob."""
        return {
            "FileId": self.file_id, "FileName": self.file_name, "ContentType": self.content_type,
            "BlobName": self.blob_name, "CreatedUtc": format_utc(self.created),
            "Completed": self.completed_kind is not None, "CompletedAs": self.completed_kind,
            "CompletionFields": self.completion_fields,
            "Verification": self.verification.to_json() if self.verification else None,
            "ReadUri": read_uri, "Proxied": self.proxied,
            "StorageRequests": [dict(entry) for entry in self.storage_requests],
        }  # fmt: skip

    @property
    def rejected(self) -> bool:
        return self.completed_kind is None and self.verification is not None and not self.verification.ok


@dataclass(frozen=True)
class HistoryEntry:
    time: datetime
    operation: str
    status: int | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "TimeUtc": format_utc(self.time),
            "Operation": self.operation,
            "Status": self.status,
            "Detail": self.detail,
        }


@dataclass
class Job:
    id: str
    type: str
    parameters: Any
    created: datetime
    seq: int
    state: str = AVAILABLE
    lock: Lock | None = None
    progress: tuple[int, int] | None = None
    completion_state: str | None = None
    message: str | None = None
    cancel_reason: str | None = None
    finished: datetime | None = None
    # lock tokens that ended their lock successfully: token -> (operation, completion state)
    closed_tokens: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    expired_tokens: set[str] = field(default_factory=set)
    history: list[HistoryEntry] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)
    # the piece of evidence each completed file delivered -> the first file that delivered it
    evidence: dict[tuple[Any, ...], str] = field(default_factory=dict)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(file id, file id it duplicates): a second file completed for the same evidence under one lock."""
    verify_content: bool = True  # False: Complete* checks decryption, size and hash only (arbitrary bytes)
    agent_id: str | None = None
    """The one agent the job is offered to (None: every agent), as a tenant with several agents sees it."""
    locks: list[LockSpan] = field(default_factory=list)
    """Every lock the job had, oldest first (the control API's lock history)."""

    def end_lock(self, token: str, moment: datetime, ending: str, host_moment: datetime | None = None) -> None:
        for span in self.locks:
            if span.token == token:
                span.end(moment, ending, host_moment)

    def to_json(self) -> dict[str, Any]:
        """The agent-facing Job model."""
        return {
            "Id": self.id,
            "Type": self.type,
            "State": self.state,
            "CreatedUtc": format_utc(self.created),
            "Parameters": self.parameters,
        }


class JobStore:
    def __init__(self, clock: SimClock, config: SimConfig) -> None:
        self._clock = clock
        self._config = config
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._seq = itertools.count()

    # -- agent operations --------------------------------------------------------------------

    def create(
        self, job_type: str, parameters: Any, *, verify_content: bool = True, agent_id: str | None = None
    ) -> dict[str, Any]:
        if job_type not in JOB_TYPES:
            raise ProblemError(400, f"Type must be one of {', '.join(JOB_TYPES)}")
        with self._lock:
            job = Job(str(uuid.uuid4()), job_type, parameters, self._clock.now(), next(self._seq))
            job.verify_content = verify_content
            job.agent_id = agent_id
            self._jobs[job.id] = job
            return job.to_json()

    def list_available(self, types: set[str] | None, agent_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            jobs = [self._expire_if_due(job) for job in self._jobs.values()]
            available = [
                j
                for j in jobs
                if j.state == AVAILABLE
                and (types is None or j.type in types)
                and (j.agent_id is None or agent_id is None or j.agent_id == agent_id)
            ]
            available.sort(key=lambda j: (j.created, j.seq))
            return [job.to_json() for job in available]

    def lock(self, job_id: str, agent_id: str) -> dict[str, str]:
        with self._lock:
            job = self._get(job_id)
            if job.state in TERMINAL_STATES:
                raise ProblemError(410, f"the job is {job.state} and no longer available")
            if job.agent_id is not None and job.agent_id != agent_id:
                raise ProblemError(409, "the job is offered to another agent")
            if job.lock is not None:
                if job.lock.agent_id == agent_id:  # a retried lock whose response was lost
                    return job.lock.to_json(job.id)
                raise ProblemError(409, "the job is locked by another agent")
            job.lock = Lock(str(uuid.uuid4()), agent_id, self._lock_expiry())
            job.state = LOCKED
            job.locks.append(LockSpan(job.lock.token, agent_id, self._clock.now(), utc_now()))
            return job.lock.to_json(job.id)

    def renew(self, job_id: str, token: str) -> dict[str, str]:
        with self._lock:
            job = self._get(job_id)
            lock = self._require_lock(job, token)
            lock.expires = self._lock_expiry()
            return lock.to_json(job.id)

    def progress(self, job_id: str, token: str, progress: int, total: int) -> None:
        with self._lock:
            job = self._get(job_id)
            self._require_lock(job, token)
            job.progress = (progress, total)

    def complete(self, job_id: str, token: str, state: str, message: str | None) -> None:
        if state not in COMPLETION_STATES:
            raise ProblemError(400, f"State must be one of {', '.join(COMPLETION_STATES)}")
        with self._lock:
            job = self._get(job_id)
            if self._repeated(job, token, "complete", state):
                return
            self._require_lock(job, token)
            self._finish(job, token, "complete", state)
            job.completion_state, job.message = state, message

    def cancel(self, job_id: str, token: str, reason: str) -> None:
        with self._lock:
            job = self._get(job_id)
            if self._repeated(job, token, "cancel", CANCELED):
                return
            self._require_lock(job, token)
            self._finish(job, token, "cancel", CANCELED)
            job.cancel_reason = reason

    def release(self, job_id: str, token: str) -> None:
        with self._lock:
            job = self._get(job_id)
            if self._repeated(job, token, "release", AVAILABLE):
                return
            self._require_lock(job, token)
            self._finish(job, token, "release", AVAILABLE)
            job.progress = None

    # -- files -------------------------------------------------------------------------------

    def add_file(
        self, job_id: str, token: str, file_name: str, content_type: str, *, proxied: bool = False
    ) -> FileRecord:
        with self._lock:
            job = self._get(job_id)
            self._require_lock(job, token)
            file_id = str(uuid.uuid4())
            blob_name = f"{job.id}/{file_id}/{file_name}"
            record = FileRecord(file_id, file_name, content_type, blob_name, self._clock.now(), proxied=proxied)
            job.files[file_id] = record
            return record

    def begin_file_completion(self, job_id: str, file_id: str, token: str, kind: str) -> str | None:
        """Checks a Complete* call; returns the blob name to verify, or None if it already succeeded."""
        with self._lock:
            job = self._get(job_id)
            record = self._get_file(job, file_id)
            expected_kind = FILE_KIND_BY_JOB_TYPE[job.type]
            if kind != expected_kind:
                raise ProblemError(400, f"a {job.type} job's files are completed with the {expected_kind} call")
            if record.completed_kind is not None:
                if record.completed_token == token:
                    return None
                raise ProblemError(409, "the file was already completed under another lock")
            self._require_lock(job, token)
            return record.blob_name

    def finish_file_completion(
        self, job_id: str, file_id: str, token: str, kind: str, fields: dict[str, Any], result: Verification
    ) -> None:
        """Records a verification; raises 422 if it failed, 409 if the lock was lost meanwhile."""
        with self._lock:
            job = self._get(job_id)
            record = self._get_file(job, file_id)
            if record.completed_kind is not None and record.completed_token == token:
                return  # a concurrent retry got there first
            record.verification = result
            if not result.ok:
                raise ProblemError(422, f"upload verification failed: {result.reason}")
            self._require_lock(job, token)
            record.completed_kind, record.completed_token, record.completion_fields = kind, token, fields
            key = _evidence_key(token, kind, fields)
            first = job.evidence.setdefault(key, file_id)
            if first != file_id:
                job.duplicates.append((file_id, first))

    def file_blob_name(self, job_id: str, file_id: str) -> str:
        with self._lock:
            return self._get_file(self._get(job_id), file_id).blob_name

    def verifies_content(self, job_id: str) -> bool:
        with self._lock:
            return self._get(job_id).verify_content

    def job_parameters(self, job_id: str) -> tuple[str, Any]:
        with self._lock:
            job = self._get(job_id)
            return job.type, job.parameters

    def file_name(self, job_id: str, file_id: str) -> str | None:
        """The name a file was created with, or None when there is no such file (upload proxy)."""
        with self._lock:
            job = self._jobs.get(job_id)
            record = job.files.get(file_id) if job else None
            return record.file_name if record else None

    def begin_storage_request(self, job_id: str, file_id: str, step: str, size: int | None) -> int:
        """Notes a request the upload proxy received; returns its number among this file's `step` requests."""
        with self._lock:
            record = self._get_file(self._get(job_id), file_id)
            number = 1 + sum(1 for entry in record.storage_requests if entry["Step"] == step)
            record.storage_requests.append(
                {"Step": step, "N": number, "Bytes": size or 0, "ReceivedUtc": format_utc(utc_now()),
                 "Status": None, "Note": ""}
            )  # fmt: skip
            return number

    def end_storage_request(
        self, job_id: str, file_id: str, step: str, number: int, status: int | None, note: str
    ) -> None:
        """The answer the proxy gave (None: the connection was dropped)."""
        with self._lock:
            record = self._get_file(self._get(job_id), file_id)
            for entry in record.storage_requests:
                if entry["Step"] == step and entry["N"] == number:
                    entry["Status"], entry["Note"] = status, note

    # -- control API -------------------------------------------------------------------------

    def offer_to(self, job_id: str, agent_id: str | None) -> None:
        """From now on the job is listed to (and lockable by) `agent_id` only; None: to every agent."""
        with self._lock:
            self._get(job_id).agent_id = agent_id

    def take_over_lock(self, job_id: str, reason: str) -> str:
        """Another agent takes the job's lock now, as if ours expired and it locked the job; returns what
        happened. Calls under the old token answer 409 (lock expired); our agent cannot lock it again
        until the other agent's lock expires in turn."""
        with self._lock:
            job = self._get(job_id)
            if job.lock is None:
                outcome = f"no lock to lose (the job is {job.state})"
            else:
                lost = job.lock
                job.expired_tokens.add(lost.token)
                job.end_lock(lost.token, self._clock.now(), "taken over")
                job.lock = Lock(str(uuid.uuid4()), OTHER_AGENT_ID, self._lock_expiry())
                job.locks.append(LockSpan(job.lock.token, OTHER_AGENT_ID, self._clock.now(), utc_now()))
                job.progress = None
                outcome = f"lock of agent {lost.agent_id} lost; agent {OTHER_AGENT_ID} holds the job now"
            job.history.append(HistoryEntry(self._clock.now(), "lock_lost", None, f"{outcome} ({reason})"))
            return outcome

    def record(self, job_id: str, operation: str, status: int | None, detail: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                job.history.append(HistoryEntry(self._clock.now(), operation, status, detail))

    def expire_lock(self, job_id: str) -> None:
        with self._lock:
            job = self._get(job_id)
            if job.lock is None:
                raise ProblemError(409, f"the job is {job.state}, not locked")
            job.lock.expires = self._clock.now()
            self._expire_if_due(job)

    def lock_history(self, job_id: str) -> list[dict[str, Any]]:
        """Every lock of the job, oldest first: who held it, when, and how it ended."""
        with self._lock:
            return [span.to_json() for span in self._get(job_id).locks]

    def summaries(self) -> list[dict[str, Any]]:
        with self._lock:
            jobs = sorted((self._expire_if_due(j) for j in self._jobs.values()), key=lambda j: (j.created, j.seq))
            return [
                {
                    **job.to_json(),
                    "LockAgentId": job.lock.agent_id if job.lock else None,
                    "FileCount": len(job.files),
                    "CompletionState": job.completion_state,
                    "VerifyContent": job.verify_content,
                    "AgentId": job.agent_id,
                    "LockCount": len(job.locks),
                }
                for job in jobs
            ]

    def detail(self, job_id: str, read_uri: Callable[[str], str]) -> dict[str, Any]:
        with self._lock:
            job = self._get(job_id)
            lock = job.lock
            return {
                **job.to_json(),
                "Lock": None if lock is None else {
                    "LockToken": lock.token, "AgentId": lock.agent_id,
                    "LockExpirationUtc": format_utc(lock.expires),
                },
                "Progress": None if job.progress is None else {
                    "TaskProgress": job.progress[0], "TaskTotal": job.progress[1],
                },
                "CompletionState": job.completion_state,
                "VerifyContent": job.verify_content,
                "AgentId": job.agent_id,
                "LockCount": len(job.locks),
                "CompletionMessage": job.message,
                "CancelReason": job.cancel_reason,
                "FinishedUtc": format_utc(job.finished) if job.finished else None,
                "History": [entry.to_json() for entry in job.history],
                "Files": [record.to_json(read_uri(record.blob_name)) for record in job.files.values()],
            }  # fmt: skip

    def stats_snapshot(self) -> list[dict[str, Any]]:
        """Per job: id, type, state, file counts, duplicates and every file's blob name (for BytesReceived)."""
        with self._lock:
            jobs = sorted((self._expire_if_due(j) for j in self._jobs.values()), key=lambda j: (j.created, j.seq))
            return [
                {
                    "JobId": job.id,
                    "Type": job.type,
                    "State": job.state,
                    "FilesIssued": len(job.files),
                    "FilesCompleted": sum(1 for f in job.files.values() if f.completed_kind is not None),
                    "FilesRejected": sum(1 for f in job.files.values() if f.rejected),
                    "DuplicateCompletions": len(job.duplicates),
                    "Duplicates": [{"FileId": f, "DuplicateOf": first} for f, first in job.duplicates],
                    "BlobNames": [f.blob_name for f in job.files.values()],
                }
                for job in jobs
            ]

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()

    # -- internals ---------------------------------------------------------------------------

    def _lock_expiry(self) -> datetime:
        return self._clock.now() + timedelta(seconds=self._config.lock_duration_seconds)

    def _get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise ProblemError(404, "no such job")
        return self._expire_if_due(job)

    @staticmethod
    def _get_file(job: Job, file_id: str) -> FileRecord:
        record = job.files.get(file_id)
        if record is None:
            raise ProblemError(404, "no such file for this job")
        return record

    def _expire_if_due(self, job: Job) -> Job:
        if job.state == LOCKED and job.lock is not None and job.lock.expires <= self._clock.now():
            lock = job.lock
            job.expired_tokens.add(lock.token)
            # expiry is noticed lazily: it happened at the lock's expiry, on either clock
            job.end_lock(lock.token, lock.expires, "expired", utc_now() - (self._clock.now() - lock.expires))
            job.state, job.lock, job.progress = AVAILABLE, None, None
            job.history.append(
                HistoryEntry(self._clock.now(), "lock_expired", None, f"lock of agent {lock.agent_id} expired")
            )
        return job

    def _require_lock(self, job: Job, token: str) -> Lock:
        if job.state == LOCKED and job.lock is not None and job.lock.token == token:
            return job.lock
        if token in job.expired_tokens:
            reason = "the lock expired (not renewed in time); the job was made available again"
        elif token in job.closed_tokens:
            reason = f"the lock already ended (job {_PAST[job.closed_tokens[token][0]]})"
        elif job.state in TERMINAL_STATES:
            reason = f"the job is {job.state}"
        elif job.state == LOCKED:
            reason = "the job is locked under another lock token"
        else:
            reason = "the job is not locked (lock it first)"
        raise ProblemError(409, f"lock not held: {reason}")

    @staticmethod
    def _repeated(job: Job, token: str, operation: str, state: str) -> bool:
        """True for a retry of a call that already succeeded with this token; 409 on a conflicting one."""
        previous = job.closed_tokens.get(token)
        if previous is None:
            return False
        if previous == (operation, state):
            return True
        raise ProblemError(409, f"the lock already ended (job {_PAST[previous[0]]}, state {previous[1]})")

    def _finish(self, job: Job, token: str, operation: str, state: str) -> None:
        job.closed_tokens[token] = (operation, state)
        job.end_lock(token, self._clock.now(), _PAST[operation])
        job.state, job.lock = state, None
        if state != AVAILABLE:
            job.finished = self._clock.now()


def _evidence_key(token: str, kind: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    """What a completed file delivers: the same camera and times (compared as instants) under one lock."""

    def instant(name: str) -> str | None:
        value = fields.get(name)
        return None if value is None else parse_utc(value).isoformat()

    return (token, kind, fields.get("CameraId"), instant("StartTimeUtc"), instant("EndTimeUtc"), instant("CapturedUtc"))
