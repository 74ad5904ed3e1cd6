"""What one work item of each kind does: a media segment, a batch of thumbnails, the discovery document.

Each returns `Done` (with what turned out to be missing) or `Waiting` (the VMS is still exporting: the
item goes back to the queue for later, its export ticket kept in the ledger so nothing is exported twice).
Files go through `deliver_file`, which skips whatever the ledger already records as delivered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from shared.agent.errors import ExportTimedOut, LockGone
from shared.agent.states import FileKind, FileState, ItemKind
from shared.agent.work.delivery import deliver_file, resume_file
from shared.agent.work.guard import ItemGuard
from shared.agent.work.ledger import FileEntry, WorkItem, utc_now
from shared.agent.work.naming import DISCOVERY_NAME, media_name, thumbnail_name
from shared.agent.work.planner import GAP_TOLERANCE, span
from shared.vms.base import Camera, ClipStatus, Download, clip_to_window
from shared.vms.errors import CameraNotFound, DeviceUnavailable, NoFootage, VmsVendorError

log = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class Done:
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Waiting:
    delay: float
    progress: float = 0.0


def run_kind(guard: ItemGuard) -> Done | Waiting:
    kind = guard.item.kind
    if kind == ItemKind.MEDIA_SEGMENT:
        return run_media(guard)
    if kind == ItemKind.THUMBNAIL_BATCH:
        return run_thumbnails(guard)
    return run_discovery(guard)


# ---- media ---------------------------------------------------------------------------------------------


def artefact_tag(item: WorkItem) -> str:
    """The tag every VMS artefact of this item carries (in its name or title), so that any run can find
    and remove what a run that died inside start_clip created before recording it."""
    digest = hashlib.sha256(f"{item.job_id}/{item.generation}/{item.item_id}".encode("utf-8", "surrogatepass"))
    return f"clr-{digest.hexdigest()[:12]}"


def run_media(guard: ItemGuard) -> Done | Waiting:
    item, vms = guard.item, guard.services.vms
    camera, start, end = item.camera_id or "", item.start, item.end
    assert start is not None and end is not None
    if item.ticket is None or not item.ticket.get("vendor"):
        tag = artefact_tag(item)
        if item.ticket is not None:  # an earlier run recorded its intent and died: remove what it made
            vms.remove_tagged(tag)
        guard.save(ticket={"tag": tag}, ticket_started=utc_now())  # the intent, before anything exists
        guard.save(ticket=vms.start_clip(camera, start, end, tag=tag))
    status = _wait_for_clip(guard)
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
        _deliver_download(guard, camera, download)
    missing = [
        f"{camera} {span(hole.start, hole.end)} (no recording)"
        for hole in clip_to_window(status.missing, start, end)
        if hole.duration > GAP_TOLERANCE
    ]
    if not downloads and not missing:
        missing.append(f"{camera} {span(start, end)} (nothing to download)")
    return Done(missing)


def _wait_for_clip(guard: ItemGuard) -> ClipStatus | None:
    """Poll the export at the vendor's pace for at most `wait_in_run` seconds; None if still not ready."""
    services = guard.services
    vms, item = services.vms, guard.item
    assert item.ticket is not None
    interval = max(1.0, vms.capabilities.min_poll_interval)
    deadline = time.monotonic() + services.wait_in_run
    while True:
        status = vms.poll_clip(item.ticket)
        if status.state in ("ready", "failed"):
            return status
        started = item.ticket_started or utc_now()
        if (utc_now() - started).total_seconds() > services.export_timeout:
            raise ExportTimedOut(
                f"{vms.vendor}: the export for {item.label()} was still {status.state} ({status.progress:.0%}) "
                f"after {services.export_timeout:.0f} s (EXPORT_TIMEOUT_SECONDS)"
            )
        guard.check()
        if time.monotonic() + interval > deadline:
            return None
        services.sleep(interval)


def _deliver_download(guard: ItemGuard, camera: str, download: Download) -> None:
    vms = guard.services.vms
    facts = {"CameraId": camera, "StartTimeUtc": download.start.isoformat(), "EndTimeUtc": download.end.isoformat()}
    entry = FileEntry(media_name(camera, download.start, download.end), FileKind.MEDIA, facts)
    if (existing := guard.item.file(entry.name)) is not None and existing.state == FileState.DELIVERED:
        return

    deliver_file(guard, entry, "video/mp4", lambda: vms.open_download(download), size_hint=download.size)


# ---- thumbnails ----------------------------------------------------------------------------------------


def run_thumbnails(guard: ItemGuard) -> Done:
    """One snapshot at a time: fetched, checked, uploaded, then the next (memory stays flat)."""
    vms = guard.services.vms
    missing = []
    for camera in guard.item.camera_ids:
        earlier = next((f for f in guard.item.files if f.facts.get("CameraId") == camera), None)
        if earlier is not None:
            if earlier.state == FileState.MISSING:
                missing.append(earlier.facts.get("Why", f"{camera} (no image)"))
                continue
            if earlier.state == FileState.DELIVERED or resume_file(guard, earlier) is not None:
                continue
        guard.check()
        try:
            snapshot = vms.get_snapshot(camera)
        except (NoFootage, DeviceUnavailable, CameraNotFound) as exc:
            missing.append(_thumbnail_missing(guard, camera, f"{camera} ({type(exc).__name__})"))
            continue
        if not snapshot.content.startswith(JPEG_MAGIC):
            why = f"{camera} (the VMS returned something that is not a JPEG)"
            missing.append(_thumbnail_missing(guard, camera, why))
            continue
        captured = snapshot.captured_at.astimezone(UTC)
        entry = FileEntry(
            thumbnail_name(camera, captured),
            FileKind.THUMBNAIL,
            {"CameraId": camera, "CapturedUtc": captured.isoformat()},
        )
        content = snapshot.content
        del snapshot
        deliver_file(guard, entry, "image/jpeg", partial(iter, (content,)), size_hint=len(content))
    return Done(missing)


def _thumbnail_missing(guard: ItemGuard, camera: str, why: str) -> str:
    entry = FileEntry(
        f"missing-{camera}", FileKind.THUMBNAIL, {"CameraId": camera, "Why": why}, state=FileState.MISSING
    )
    guard.save(files=guard.item.with_file(entry).files)
    return why


# ---- discovery -----------------------------------------------------------------------------------------


def run_discovery(guard: ItemGuard) -> Done:
    vms = guard.services.vms
    counter = {"devices": 0}

    def document() -> Iterator[bytes]:
        """The camera list as one JSON document, streamed camera by camera (an account may have thousands)."""
        counter["devices"] = 0
        generated = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        yield json.dumps({"GeneratedUtc": generated, "Vendor": vms.vendor})[:-1].encode() + b', "Devices": ['
        for index, camera in enumerate(vms.list_cameras()):
            counter["devices"] += 1
            yield (b", " if index else b"") + json.dumps(_device(camera)).encode()
            if index % 200 == 199:
                guard.check()
        yield b"]}"

    entry = FileEntry(DISCOVERY_NAME, FileKind.DISCOVERY, {})
    deliver_file(guard, entry, "application/json", document, late_facts=lambda: {"DeviceCount": counter["devices"]})
    return Done()


def _device(camera: Camera) -> dict[str, object]:
    return {
        "DeviceId": camera.id,
        "Name": camera.name,
        "Type": "Camera",
        "Latitude": camera.latitude,
        "Longitude": camera.longitude,
        "Azimuth": camera.azimuth,
        "TimeZone": camera.timezone,
        "Online": camera.online,
        "Model": camera.model,
        "Manufacturer": camera.manufacturer,
    }


__all__ = ["Done", "LockGone", "Waiting", "run_kind"]
