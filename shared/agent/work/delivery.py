"""One file, delivered exactly once: InitializeUpload → encrypt + upload → commit → Complete*.

The ledger records each step before the next one can have an effect:

    (nothing)   → Committing  FileId, size and SHA-256 recorded (a compare-and-swap that also proves we
                              still own the item), then the blob is committed
    Committing  → Committed   the commit happened; recorded before Complete* (ownership proven again)
    Committed   → Delivered   Complete* acknowledged

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
from datetime import datetime
from typing import Any

from shared.agent.states import FileState
from shared.agent.work.guard import ItemGuard
from shared.agent.work.ledger import FileEntry
from shared.registry.errors import UploadRejected
from shared.telemetry import metrics
from shared.upload.errors import SasRejected

log = logging.getLogger(__name__)

SourceFactory = Callable[[], Iterable[bytes]]


def deliver_file(
    guard: ItemGuard,
    entry: FileEntry,
    content_type: str,
    open_source: SourceFactory,
    *,
    size_hint: int | None = None,
    late_facts: Callable[[], dict[str, Any]] | None = None,
) -> FileEntry:
    """Deliver `entry` (name, Complete* kind and facts) unless the ledger says it already was.

    `late_facts` adds facts known only once the whole source was read (a discovery's device count)."""
    current = guard.item.file(entry.name)
    if current is not None:
        if current.state == FileState.DELIVERED:
            return current
        if (resumed := resume_file(guard, current)) is not None:
            return resumed
    fresh = replace(entry, state=FileState.NEW, file_id="", size=0, sha256="")
    return _upload(guard, fresh, content_type, open_source, size_hint, late_facts)


def resume_file(guard: ItemGuard, entry: FileEntry) -> FileEntry | None:
    """Finish a file an earlier run committed (or was about to): Complete* the same FileId again.

    None when there is nothing to finish, or the Registry has no such blob (the commit never happened):
    the entry is dropped and the caller uploads the file afresh."""
    if entry.state not in (FileState.COMMITTING, FileState.COMMITTED) or not entry.file_id:
        return None
    try:
        return _complete(guard, entry)
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
    guard: ItemGuard,
    entry: FileEntry,
    content_type: str,
    open_source: SourceFactory,
    size_hint: int | None,
    late_facts: Callable[[], dict[str, Any]] | None,
) -> FileEntry:
    services = guard.services
    started = time.monotonic()  # telemetry: seconds per file
    for attempt in (1, 2):
        guard.check(force=True)
        ticket = services.registry.initialize_upload(guard.job_id, guard.lock_token, entry.name, content_type)
        committing: list[FileEntry] = []

        def before_commit(
            size: int, sha256: str, file_id: str = ticket.file_id, committing: list[FileEntry] = committing
        ) -> None:
            guard.confirm_lock_with_registry()
            facts = {**entry.facts, **(late_facts() if late_facts else {})}
            pending = replace(entry, facts=facts, state=FileState.COMMITTING, file_id=file_id, size=size, sha256=sha256)
            guard.save(files=guard.item.with_file(pending).files)
            committing.append(pending)

        source = open_source()
        try:
            services.uploader.upload(
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
        committed = replace(committing[-1], state=FileState.COMMITTED)
        guard.save(files=guard.item.with_file(committed).files)
        delivered = _complete(guard, committed)
        metrics.file_delivered(delivered.size, time.monotonic() - started, from_vms=entry.kind == "media")
        return delivered
    raise AssertionError("unreachable")


def _complete(guard: ItemGuard, entry: FileEntry) -> FileEntry:
    guard.check(force=True)
    registry, facts = guard.services.registry, entry.facts
    if entry.kind == "media":
        registry.complete_media(
            guard.job_id,
            guard.lock_token,
            entry.file_id,
            camera_id=facts["CameraId"],
            start=datetime.fromisoformat(facts["StartTimeUtc"]),
            end=datetime.fromisoformat(facts["EndTimeUtc"]),
            size=entry.size,
            sha256=entry.sha256,
        )
    elif entry.kind == "thumbnail":
        registry.complete_thumbnail(
            guard.job_id,
            guard.lock_token,
            entry.file_id,
            camera_id=facts["CameraId"],
            captured=datetime.fromisoformat(facts["CapturedUtc"]),
            size=entry.size,
            sha256=entry.sha256,
        )
    else:
        registry.complete_discovery(
            guard.job_id,
            guard.lock_token,
            entry.file_id,
            device_count=int(facts["DeviceCount"]),
            size=entry.size,
            sha256=entry.sha256,
        )
    delivered = replace(entry, state=FileState.DELIVERED)
    guard.save(files=guard.item.with_file(delivered).files, bytes_in_flight=0)
    log.info(
        "Delivered %s (%d bytes, SHA-256 %s…) as file %s of job %s",
        entry.name,
        entry.size,
        entry.sha256[:12],
        entry.file_id,
        guard.job_id,
    )
    return delivered
