"""Small in-memory stand-ins for the Registry, the VMS and the uploader, with the method signatures of
`RegistryClient`, `VmsAdapter` and `EncryptedBlobUploader` — only what the engine's unit tests reach — and
`engine_services()`, the engine's real `Services` built on them and on the fake table and queues."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.agent.locks.pause import AgentPause
from shared.agent.locks.records import LockRecords
from shared.agent.wiring.services import Services
from shared.agent.work.ledger import Ledger
from shared.registry.contract import Job, Lock, UploadTicket
from shared.registry.errors import JobGone, LockTokenRefused
from shared.upload.uploader import CommitCallback, ProgressCallback, UploadResult
from shared.vms.base import Camera, Capabilities, ClipStatus, DownloadStream, Interval, Snapshot, VmsAdapter
from tests.fakes.queues import FakeQueue
from tests.fakes.tables import FakeTableClient

LOCK_MINUTES = 5


@dataclass
class FakeRegistry:
    """Jobs, locks and files as the Registry keeps them (as devstack's simulator does): lock is idempotent
    for this agent; complete, cancel and release repeated with the same lock and outcome are accepted; any
    other call under a lock that is not the job's current one is 409 (LockTokenRefused)."""

    jobs: dict[str, Job] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    closed: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Lock token → the call that ended it and the job's state after."""
    calls: list[tuple[str, str]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    _files: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def offer(self, job_type: str, parameters: Mapping[str, Any] | None = None) -> str:
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        self.jobs[job_id] = Job.model_validate({"Id": job_id, "Type": job_type, "Parameters": dict(parameters or {}),
                                                "CreatedUtc": datetime.now(UTC)})  # fmt: skip
        self.states[job_id] = "Available"
        return job_id

    def expire_lock(self, job_id: str) -> None:
        self.tokens.pop(job_id, None)
        self.states[job_id] = "Available"

    def list_jobs(self, types: Iterable[str] | None = None) -> list[Job]:
        wanted = set(types) if types else None
        return [job for job_id, job in self.jobs.items()
                if self.states[job_id] == "Available" and (wanted is None or job.type in wanted)]  # fmt: skip

    def lock(self, job_id: str) -> Lock:
        self.calls.append(("lock", job_id))
        if job_id not in self.jobs:
            raise JobGone(f"job {job_id} is gone", operation="lock", job_id=job_id, status=404)
        if self.states[job_id] not in ("Available", "Locked"):
            raise JobGone(f"job {job_id} is {self.states[job_id]}", operation="lock", job_id=job_id, status=410)
        token = self.tokens.setdefault(job_id, uuid.uuid4().hex)
        self.states[job_id] = "Locked"
        return self._lock(job_id, token)

    def renew(self, job_id: str, lock_token: str) -> Lock:
        self._under_lock("renew", job_id, lock_token)
        return self._lock(job_id, lock_token)

    def report_progress(self, job_id: str, lock_token: str, progress: int, total: int) -> None:
        self._under_lock("progress", job_id, lock_token)

    def complete(self, job_id: str, lock_token: str, state: str, message: str | None = None) -> None:
        self._end("complete", job_id, lock_token, state)

    def cancel(self, job_id: str, lock_token: str, reason: str) -> None:
        self._end("cancel", job_id, lock_token, "Canceled")

    def release(self, job_id: str, lock_token: str) -> None:
        self._end("release", job_id, lock_token, "Available")

    def initialize_upload(self, job_id: str, lock_token: str, file_name: str, content_type: str) -> UploadTicket:
        self._under_lock("initialize_upload", job_id, lock_token)
        return UploadTicket.model_validate({"FileId": f"file-{next(self._files)}", "JsonWebKey": {},
                                            "Uri": f"https://fake.blob.core.windows.net/up/{file_name}"})  # fmt: skip

    def complete_media(self, job_id: str, lock_token: str, file_id: str, *, camera_id: str, start: datetime,
                       end: datetime, size: int, sha256: str) -> None:  # fmt: skip
        self._file("complete_media", job_id, lock_token, file_id, size, sha256)

    def complete_discovery(self, job_id: str, lock_token: str, file_id: str, *, device_count: int, size: int,
                           sha256: str) -> None:  # fmt: skip
        self._file("complete_discovery", job_id, lock_token, file_id, size, sha256)

    def complete_thumbnail(self, job_id: str, lock_token: str, file_id: str, *, camera_id: str, captured: datetime,
                           size: int, sha256: str) -> None:  # fmt: skip
        self._file("complete_thumbnail", job_id, lock_token, file_id, size, sha256)

    def operations(self, name: str) -> int:
        return sum(1 for operation, _ in self.calls if operation == name)

    def _file(self, operation: str, job_id: str, lock_token: str, file_id: str, size: int, sha256: str) -> None:
        if any(f["FileId"] == file_id and f["LockToken"] == lock_token for f in self.files):
            self.calls.append((operation, job_id))
            return  # completed already with this lock: a retry
        self._under_lock(operation, job_id, lock_token)
        self.files.append({"JobId": job_id, "FileId": file_id, "LockToken": lock_token, "Size": size, "Sha256": sha256})

    def _under_lock(self, operation: str, job_id: str, lock_token: str) -> None:
        self.calls.append((operation, job_id))
        if self.tokens.get(job_id) != lock_token:
            raise LockTokenRefused(f"{operation}: job {job_id} is not locked with this token", operation=operation,
                           job_id=job_id, status=409)  # fmt: skip

    def _end(self, operation: str, job_id: str, lock_token: str, state: str) -> None:
        if self.closed.get(lock_token) == (operation, state):
            self.calls.append((operation, job_id))
            return  # a retry of a call that already succeeded with this lock
        self._under_lock(operation, job_id, lock_token)
        self.closed[lock_token] = (operation, state)
        self.states[job_id] = state
        self.tokens.pop(job_id, None)

    def _lock(self, job_id: str, token: str) -> Lock:
        expiry = datetime.now(UTC) + timedelta(minutes=LOCK_MINUTES)
        return Lock.model_validate({"JobId": job_id, "LockToken": token, "LockExpirationUtc": expiry})


class FakeVms(VmsAdapter):
    """A camera list; any other VMS call is not part of these tests and says so."""

    vendor = "fake"
    capabilities = Capabilities(max_window=timedelta(hours=1), live_snapshot=True, snapshot_at_time=False,
                                async_export=False, reports_coverage=True)  # fmt: skip

    def __init__(self, cameras: Iterable[str] = ("cam-1",)) -> None:
        self.cameras = list(cameras)
        self.cleanups: list[dict[str, Any]] = []

    def list_cameras(self) -> Iterator[Camera]:
        return iter([Camera(camera, name=camera) for camera in self.cameras])

    def get_snapshot(self, camera_id: str, at: datetime | None = None) -> Snapshot:
        raise NotImplementedError("snapshots are not part of the engine's unit tests")

    def find_recordings(self, camera_id: str, start: datetime, end: datetime) -> list[Interval]:
        raise NotImplementedError("recordings are not part of the engine's unit tests")

    def start_clip(self, camera_id: str, start: datetime, end: datetime, *, tag: str) -> dict[str, Any]:
        raise NotImplementedError("clips are not part of the engine's unit tests")

    def poll_clip(self, ticket: dict[str, Any]) -> ClipStatus:
        raise NotImplementedError("clips are not part of the engine's unit tests")

    def open_download(self, download: Any) -> DownloadStream:
        raise NotImplementedError("downloads are not part of the engine's unit tests")

    def cleanup(self, ticket: dict[str, Any]) -> None:
        self.cleanups.append(ticket)

    def remove_tagged(self, tag: str) -> int:
        return 0


class FakeUploader:
    """Reads the source, reports its progress, calls `before_commit`, then counts the blob as committed."""

    def __init__(self) -> None:
        self.committed: list[tuple[str, int, str]] = []

    def upload(
        self,
        sas_uri: str,
        recipient_jwk: Mapping[str, Any],
        source: Iterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        size_hint: int | None = None,
        progress: ProgressCallback | None = None,
        before_commit: CommitCallback | None = None,
    ) -> UploadResult:
        digest, size = hashlib.sha256(), 0
        for chunk in source:
            digest.update(chunk)
            size += len(chunk)
        if progress is not None:
            progress(size)
        if before_commit is not None:
            before_commit(size, digest.hexdigest())
        self.committed.append((sas_uri, size, digest.hexdigest()))
        return UploadResult(size=size, sha256=digest.hexdigest(), encrypted_size=size, blocks=1, seconds=0.0)


@dataclass
class Engine:
    """The engine's real `Services` on the fakes, and the fakes themselves for the test to drive."""

    services: Services
    table: FakeTableClient
    queue: FakeQueue
    poison: FakeQueue
    registry: FakeRegistry
    vms: FakeVms
    uploader: FakeUploader


def engine_services(**settings: Any) -> Engine:
    table, queue, poison = FakeTableClient("clearancelocks"), FakeQueue("jobs"), FakeQueue("jobs-poison")
    registry, vms, uploader = FakeRegistry(), FakeVms(), FakeUploader()
    fake: Any = table
    services = Services(
        registry=registry,  # type: ignore[arg-type]
        vms=vms,
        uploader=uploader,  # type: ignore[arg-type]
        records=LockRecords(fake),
        ledger=Ledger(fake),
        queue=queue,  # type: ignore[arg-type]
        poison_queue=poison,  # type: ignore[arg-type]
        pause=AgentPause(fake, 300),
        retry_delay=0.0,
        sleep=lambda _: None,
        **settings,
    )
    return Engine(services, table, queue, poison, registry, vms, uploader)
