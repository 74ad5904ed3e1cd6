"""One file, delivered exactly once: InitializeUpload → encrypt + upload → commit → Complete*.

The ledger records each step before the next one can have an effect:

    (nothing)   → Committing  FileId, size and SHA-256 recorded (a compare-and-swap that also proves we
                              still own the item), then the blob is committed and Complete* called
    Committing  → Delivered   Complete* acknowledged (written with the item's next write: the next
                              file's Committing, or the item's finish; until then a run that dies leaves
                              Committing, and the next run calls Complete* again for the same FileId)

(No write records the commit itself: a run that dies between the commit and Complete* is finished the same
way as one that died just before the commit — by Complete* of the recorded FileId. Rows written by an
earlier version may say `Committed`; they are resumed alike.)

A run that dies before Committing leaves only uncommitted blocks: the next run starts the file again with
a fresh InitializeUpload. A run that dies later leaves a FileId: the next run calls Complete* for that
same file again (idempotent on the Registry) instead of uploading it a second time; if the Registry
answers that the blob is missing (the commit never happened), the file is uploaded afresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shared.agent.states import FileKind, FileState
from shared.agent.work.guard import ItemGuard
from shared.agent.work.ledger import FileEntry
from shared.registry.client import RegistryClient
from shared.registry.errors import UploadRejected
from shared.telemetry import metrics
from shared.upload.errors import SasRejected
from shared.upload.uploader import EncryptedBlobUploader

if TYPE_CHECKING:  # a job type's items use this module in turn
    from shared.agent.jobs.base import JobType

log = logging.getLogger(__name__)

SourceFactory = Callable[[], Iterable[bytes]]


class FileDelivery:
    """The files of one run of one item: uploaded with `uploader`, registered with `registry`, completed with
    the Complete* call of the item's `job_type`, every step recorded through `guard`."""

    def __init__(
        self, guard: ItemGuard, job_type: JobType, *, registry: RegistryClient, uploader: EncryptedBlobUploader
    ) -> None:
        self._guard = guard
        self._job_type = job_type
        self._registry = registry
        self._uploader = uploader

    def deliver(
        self,
        entry: FileEntry,
        content_type: str,
        open_source: SourceFactory,
        *,
        size_hint: int | None = None,
        late_facts: Callable[[], dict[str, Any]] | None = None,
    ) -> FileEntry:
        """Deliver `entry` (name, Complete* kind and facts) unless the ledger says it already was.

        `late_facts` adds facts known only once the whole source was read (a discovery's device count)."""
        current = self._guard.item.file(entry.name)
        if current is not None:
            if current.state == FileState.DELIVERED:
                return current
            if (resumed := self.resume(current)) is not None:
                return resumed
        fresh = replace(entry, state=FileState.NEW, file_id="", size=0, sha256="")
        return self._upload(fresh, content_type, open_source, size_hint, late_facts)

    def resume(self, entry: FileEntry) -> FileEntry | None:
        """Finish a file an earlier run committed (or was about to): Complete* the same FileId again.

        None when there is nothing to finish, or the Registry has no such blob (the commit never happened):
        the entry is dropped and the caller uploads the file afresh."""
        guard = self._guard
        if entry.state not in (FileState.COMMITTING, FileState.COMMITTED) or not entry.file_id:
            return None
        try:
            return self._complete(entry)
        except UploadRejected as exc:
            log.info(
                "File %s (FileId %s) of job %s was never committed (HTTP %s); it will be uploaded again",
                entry.name,
                entry.file_id,
                guard.job_id,
                exc.status,
            )
        guard.save(files=tuple(f for f in guard.item.files if f.name != entry.name))
        return None

    def _upload(
        self,
        entry: FileEntry,
        content_type: str,
        open_source: SourceFactory,
        size_hint: int | None,
        late_facts: Callable[[], dict[str, Any]] | None,
    ) -> FileEntry:
        guard = self._guard
        started = time.monotonic()  # telemetry: seconds per file
        for attempt in (1, 2):
            guard.check()  # the Registry itself refuses InitializeUpload under a lost lock
            ticket = self._registry.initialize_upload(guard.job_id, guard.lock_token, entry.name, content_type)
            committing: list[FileEntry] = []

            def before_commit(
                size: int, sha256: str, file_id: str = ticket.file_id, committing: list[FileEntry] = committing
            ) -> None:
                guard.confirm_lock_with_registry()
                facts = {**entry.facts, **(late_facts() if late_facts else {})}
                pending = replace(
                    entry, facts=facts, state=FileState.COMMITTING, file_id=file_id, size=size, sha256=sha256
                )
                guard.save(files=guard.item.with_file(pending).files)
                committing.append(pending)

            source = open_source()
            try:
                self._uploader.upload(
                    ticket.uri,
                    ticket.json_web_key,
                    source,
                    content_type=content_type,
                    size_hint=size_hint,
                    progress=guard.on_bytes,
                    before_commit=before_commit,
                )
            except SasRejected:
                if attempt == 2:
                    raise
                log.warning("Upload SAS for %s of job %s rejected; asking for a new ticket", entry.name, guard.job_id)
                continue
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
            delivered = self._complete(committing[-1])
            metrics.file_delivered(delivered.size, time.monotonic() - started, from_vms=entry.kind == FileKind.MEDIA)
            return delivered
        raise AssertionError("unreachable")

    def _complete(self, entry: FileEntry) -> FileEntry:
        guard = self._guard
        guard.check()  # the Registry itself refuses Complete* under a lost lock
        self._job_type.complete(self._registry, guard.job_id, guard.lock_token, entry)
        delivered = replace(entry, state=FileState.DELIVERED)
        guard.note(files=guard.item.with_file(delivered).files, bytes_in_flight=0)  # written with the next write
        log.info(
            "Delivered %s (%d bytes, SHA-256 %s…) as file %s of job %s",
            entry.name,
            entry.size,
            entry.sha256[:12],
            entry.file_id,
            guard.job_id,
        )
        return delivered
