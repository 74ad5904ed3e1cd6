"""One run of one job: the lock token, throttled progress, lost-lock detection and file delivery.

Handlers call `deliver()` for each file; it owns the path InitializeUpload → encrypt + upload →
Complete*, retrying once with a fresh ticket when storage rejects an expired SAS. `check_lock()` is
called from the upload's progress callback, so a lock lost mid-upload stops the upload before its
block list is committed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.agent.records import LockRecord, LockRecords, StaleRecord, utc_now
from shared.registry.client import RegistryClient
from shared.registry.contract import UploadTicket
from shared.registry.errors import LockLost
from shared.upload.errors import SasRejected
from shared.upload.uploader import EncryptedBlobUploader, UploadResult
from shared.vms.base import VmsAdapter

HEARTBEAT_EVERY = timedelta(seconds=30)
HEARTBEAT_STALE_AFTER = timedelta(minutes=2)


class LockLostError(Exception):
    """Our lock on the job is gone (renewal failed, or the Registry answered 409): stop, never complete."""


@dataclass
class Services:
    """What a run needs; built once per worker process."""

    registry: RegistryClient
    vms: VmsAdapter
    uploader: EncryptedBlobUploader
    records: LockRecords
    progress_interval: float = 5.0
    export_timeout: float = 1800.0
    max_dequeue_count: int = 5
    sleep: Callable[[float], None] = time.sleep


@dataclass
class JobRun:
    services: Services
    record: LockRecord
    parameters: dict[str, Any]
    log: logging.LoggerAdapter
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    _last_progress: float = field(default=0.0)
    _last_check: float = field(default=0.0)
    _last_reported: tuple[int, int] = field(default=(-1, -1))
    _lost: bool = False

    @property
    def job_id(self) -> str:
        return self.record.job_id

    @property
    def lock_token(self) -> str:
        return self.record.lock_token

    # ---- the lock -----------------------------------------------------------------------------------

    def check_lock(self, *, force: bool = False) -> None:
        """Raise LockLostError if renew_locks marked the record Lost or a new lock replaced ours.
        Reads the record at most every progress interval, and writes the heartbeat every 30 s."""
        now = time.monotonic()
        if self._lost:
            raise LockLostError(f"job {self.job_id}: lock lost")
        if not force and now - self._last_check < self.services.progress_interval:
            return
        self._last_check = now
        current = self.services.records.get(self.job_id)
        if current is None or current.state == "Lost" or current.lock_token != self.lock_token:
            self._lost = True
            raise LockLostError(f"job {self.job_id}: the lock record says the lock is lost")
        if current.heartbeat is None or utc_now() - current.heartbeat >= HEARTBEAT_EVERY:
            with contextlib.suppress(StaleRecord):  # renew_locks wrote meanwhile; the next check reads again
                self.record = self.services.records.save(
                    current.moved_to(current.state, heartbeat=utc_now(), owner=self.record.owner)
                )
        else:
            self.record = current

    def is_lost(self) -> bool:
        try:
            self.check_lock()
        except LockLostError:
            return True
        return False

    # ---- progress ------------------------------------------------------------------------------------

    def report_progress(self, *, final: bool = False) -> None:
        """TaskProgress/TaskTotal in files, at most one update per progress interval (plus the final one)."""
        now = time.monotonic()
        total = max(self.files_total, self.files_done, 1)
        if (self.files_done, total) == self._last_reported:
            return  # nothing new to say: every Registry call counts
        if not final and now - self._last_progress < self.services.progress_interval:
            return
        self._last_progress = now
        self._last_reported = (self.files_done, total)
        try:
            self.services.registry.report_progress(self.job_id, self.lock_token, self.files_done, total)
        except LockLost:
            self._lost = True
            raise LockLostError(f"job {self.job_id}: the Registry answered 409 to progress") from None

    # ---- files ---------------------------------------------------------------------------------------

    def deliver(
        self,
        file_name: str,
        content_type: str,
        open_source: Callable[[], Iterable[bytes]],
        complete: Callable[[UploadTicket, UploadResult], None],
        *,
        size_hint: int | None = None,
    ) -> UploadResult:
        """Upload one file and Complete* it; one retry with a new ticket if the SAS was rejected."""
        for attempt in (1, 2):
            self.check_lock(force=True)
            ticket = self.services.registry.initialize_upload(self.job_id, self.lock_token, file_name, content_type)
            try:
                result = self.services.uploader.upload(
                    ticket.uri,
                    ticket.json_web_key,
                    open_source(),
                    content_type=content_type,
                    size_hint=size_hint,
                    progress=lambda _bytes: self.check_lock(),
                )
            except SasRejected:
                if attempt == 2:
                    raise
                self.log.warning("The upload SAS for %s was rejected; asking for a new ticket", file_name)
                continue
            complete(ticket, result)
            self.files_done += 1
            self.bytes_done += result.size
            self.log.info(
                "Delivered %s (%d bytes, SHA-256 %s…) as file %s",
                file_name,
                result.size,
                result.sha256[:12],
                ticket.file_id,
            )
            self.report_progress()
            return result
        raise AssertionError("unreachable")


def iso_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")
