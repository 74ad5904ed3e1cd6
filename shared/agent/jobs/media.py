"""mediarequest: video of cameras over time windows.

Planning: every camera's recorded intervals within its window (`find_recordings`), cut at wall-clock
multiples of `MAX_SEGMENT_MINUTES` (…16:00, 16:15, 16:30… for 15 minutes); one item per piece (one file,
occasionally more if the VMS finds a gap the listing did not show). Parts of a window with no recording
are noted on the plan as missing. A window that ends before it starts or is longer than 2 hours, or a
camera the VMS does not know, cancels the job.

An item: start (or resume) the VMS export of its piece, wait for it at the vendor's pace for at most
`wait_in_run` (then hand the item back, ticket kept), and deliver each download it offers.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.agent.errors import ExportTimedOut, JobCanceled
from shared.agent.jobs.base import Done, Draft, ItemRun, JobType, Planning, Waiting
from shared.agent.states import FileKind, FileState, ItemKind
from shared.agent.work.ledger import FileEntry, OfferedJob, WorkItem, utc_now
from shared.agent.work.naming import media_name
from shared.registry import contract
from shared.registry.client import RegistryClient
from shared.vms.base import ClipStatus, Download, Interval, clip_to_window, gaps
from shared.vms.errors import CameraNotFound, VmsVendorError

MAX_WINDOW = timedelta(hours=2)
WINDOW_TOLERANCE = timedelta(seconds=1)
GAP_TOLERANCE = timedelta(seconds=2)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MediaRequest(JobType):
    name = contract.MEDIA_REQUEST
    parameters = contract.MediaRequestParameters
    item_kind = ItemKind.MEDIA_SEGMENT
    file_kind = FileKind.MEDIA
    small = False
    nothing_delivered = "Video unavailable"

    def plan(self, job: OfferedJob, parameters: Any, planning: Planning) -> Draft:
        assert isinstance(parameters, contract.MediaRequestParameters)
        vms = planning.vms
        for window in parameters.cameras:
            if window.end_time_utc <= window.start_time_utc:
                raise JobCanceled(f"camera {window.camera_id}: the window ends before it starts")
            if window.end_time_utc - window.start_time_utc > MAX_WINDOW + WINDOW_TOLERANCE:
                raise JobCanceled(f"camera {window.camera_id}: the window is longer than 2 hours")
        draft, seen = Draft(), set()
        for index, window in enumerate(parameters.cameras):
            camera, start, end = window.camera_id, window.start_time_utc, window.end_time_utc
            try:
                covered = clip_to_window(vms.find_recordings(camera, start, end), start, end)
            except CameraNotFound:
                raise JobCanceled(f"camera {camera} is unknown to the {vms.vendor} VMS") from None
            for hole in gaps(covered, start, end):
                if hole.duration > GAP_TOLERANCE:
                    draft.missing.append(f"{camera} {span(hole.start, hole.end)} (no recording)")
            for interval in covered:
                for piece in segments(interval, planning.max_segment):
                    if (camera, piece) in seen:
                        continue  # the same camera and time asked twice: one file
                    seen.add((camera, piece))
                    item_id = f"m{index:03d}-{_short_hash(camera)}-{int(piece.start.timestamp() * 1000)}"
                    draft.items.append(
                        WorkItem(job.job_id, job.generation, item_id, self.item_kind, camera_id=camera,
                                 start=piece.start, end=piece.end)
                    )  # fmt: skip
        return draft

    def run(self, run: ItemRun) -> Done | Waiting:
        item, vms, guard = run.item, run.vms, run.guard
        camera, start, end = item.camera_id or "", item.start, item.end
        assert start is not None and end is not None
        if item.ticket is None or not item.ticket.get("vendor"):
            tag = artefact_tag(item)
            if item.ticket is not None:  # an earlier run recorded its intent and died: remove what it made
                vms.remove_tagged(tag)
            guard.save(ticket={"tag": tag}, ticket_started=utc_now())  # the intent, before anything exists
            guard.save(ticket=vms.start_clip(camera, start, end, tag=tag))
        status = _wait_for_clip(run)
        if status is None:
            return Waiting(delay=max(5.0, vms.capabilities.min_poll_interval))
        if status.state == "failed":
            return Done([f"{camera} {span(start, end)} (export failed{': ' + status.detail if status.detail else ''})"])
        downloads = sorted(status.downloads, key=lambda d: d.start)
        for download in downloads:
            if download.start < start or download.end > end or download.end <= download.start:
                raise VmsVendorError(
                    f"{vms.vendor} offered {download.name} for {span(download.start, download.end)}, "
                    f"outside the segment {span(start, end)}: refusing footage nobody asked for",
                    vendor=vms.vendor,
                )
        if downloads and not guard.item.size_hint:
            guard.save(size_hint=sum(d.size or 0 for d in downloads))
        for download in downloads:
            _deliver_download(run, camera, download)
        missing = [
            f"{camera} {span(hole.start, hole.end)} (no recording)"
            for hole in clip_to_window(status.missing, start, end)
            if hole.duration > GAP_TOLERANCE
        ]
        if not downloads and not missing:
            missing.append(f"{camera} {span(start, end)} (nothing to download)")
        return Done(missing)

    def complete(self, registry: RegistryClient, job_id: str, lock_token: str, entry: FileEntry) -> None:
        facts = entry.facts
        registry.complete_media(
            job_id,
            lock_token,
            entry.file_id,
            camera_id=facts["CameraId"],
            start=datetime.fromisoformat(facts["StartTimeUtc"]),
            end=datetime.fromisoformat(facts["EndTimeUtc"]),
            size=entry.size,
            sha256=entry.sha256,
        )


def span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%dT%H:%M:%SZ}–{end:%H:%M:%SZ}"


def segments(interval: Interval, limit: timedelta) -> list[Interval]:
    """`interval` cut at wall-clock multiples of `limit` (…16:00, 16:15, 16:30… for 15 minutes)."""
    step = limit.total_seconds()
    pieces, cursor = [], interval.start
    while cursor < interval.end:
        boundary = _EPOCH + timedelta(seconds=((cursor - _EPOCH).total_seconds() // step + 1) * step)
        piece_end = min(interval.end, boundary)
        pieces.append(Interval(cursor, piece_end))
        cursor = piece_end
    return pieces


def artefact_tag(item: WorkItem) -> str:
    """The tag every VMS artefact of this item carries (in its name or title), so that any run can find
    and remove what a run that died inside start_clip created before recording it."""
    digest = hashlib.sha256(f"{item.job_id}/{item.generation}/{item.item_id}".encode("utf-8", "surrogatepass"))
    return f"clr-{digest.hexdigest()[:12]}"


def _wait_for_clip(run: ItemRun) -> ClipStatus | None:
    """Poll the export at the vendor's pace for at most `wait_in_run` seconds; None if still not ready."""
    vms, item = run.vms, run.item
    assert item.ticket is not None
    interval = max(1.0, vms.capabilities.min_poll_interval)
    deadline = time.monotonic() + run.wait_in_run
    while True:
        status = vms.poll_clip(item.ticket)
        if status.state in ("ready", "failed"):
            return status
        started = item.ticket_started or utc_now()
        if (utc_now() - started).total_seconds() > run.export_timeout:
            raise ExportTimedOut(
                f"{vms.vendor}: the export for {item.label()} was still {status.state} ({status.progress:.0%}) "
                f"after {run.export_timeout:.0f} s (EXPORT_TIMEOUT_SECONDS)"
            )
        run.guard.check()
        if time.monotonic() + interval > deadline:
            return None
        run.sleep(interval)


def _deliver_download(run: ItemRun, camera: str, download: Download) -> None:
    vms = run.vms
    facts = {"CameraId": camera, "StartTimeUtc": download.start.isoformat(), "EndTimeUtc": download.end.isoformat()}
    entry = FileEntry(media_name(camera, download.start, download.end), FileKind.MEDIA, facts)
    if (existing := run.item.file(entry.name)) is not None and existing.state == FileState.DELIVERED:
        return
    run.files.deliver(entry, "video/mp4", lambda: vms.open_download(download), size_hint=download.size)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
