"""What each job type does: media requests, discovery and thumbnails.

Each handler delivers what it can and returns an Outcome: everything delivered → Completed; some →
PartiallyCompleted (the message lists what is missing); nothing → Failed. A job the agent can never
do (bad parameters, a camera the VMS does not know) raises JobCanceled before any file is uploaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from shared.agent.run import JobRun, LockLostError, iso_stamp
from shared.registry.contract import PARAMETER_MODELS, CameraWindow, MediaRequestParameters, ThumbnailParameters
from shared.vms.base import Camera, Download, Interval, clip_to_window, gaps
from shared.vms.errors import CameraNotFound, DeviceUnavailable, NoFootage
from shared.vms.polling import wait_for_clip
from shared.wire import describe_validation_error

MAX_WINDOW = timedelta(hours=2)
GAP_TOLERANCE = timedelta(seconds=2)
JPEG_MAGIC = b"\xff\xd8\xff"


class JobCanceled(Exception):
    """The job can never be done by this agent; the message is the cancel reason."""


@dataclass
class Outcome:
    delivered: int = 0
    missing: list[str] = field(default_factory=list)

    def completion(self, nothing: str) -> tuple[str, str | None]:
        if not self.missing:
            return "Completed", None
        listed = "; ".join(self.missing[:20]) + (
            f"; and {len(self.missing) - 20} more" if len(self.missing) > 20 else ""
        )
        if self.delivered:
            return "PartiallyCompleted", f"Missing: {listed}"[:1000]
        return "Failed", f"{nothing}: {listed}"[:1000]


def parameters_for(job_type: str, raw: dict) -> object:
    model = PARAMETER_MODELS.get(job_type)
    if model is None:
        raise JobCanceled(f"unsupported job type {job_type!r}: this agent handles {', '.join(PARAMETER_MODELS)}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise JobCanceled(describe_validation_error(exc, source="malformed job parameters")) from None


def _span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%dT%H:%M:%SZ}–{end:%H:%M:%SZ}"


# ---- media requests -----------------------------------------------------------------------------------


def run_media(run: JobRun, parameters: MediaRequestParameters) -> Outcome:
    vms = run.services.vms
    for window in parameters.cameras:
        if window.end_time_utc <= window.start_time_utc:
            raise JobCanceled(f"camera {window.camera_id}: the window ends before it starts")
        if window.end_time_utc - window.start_time_utc > MAX_WINDOW + timedelta(seconds=1):
            raise JobCanceled(f"camera {window.camera_id}: the window is longer than 2 hours")
    coverage: dict[int, list[Interval]] = {}
    for index, window in enumerate(parameters.cameras):  # unknown cameras cancel before anything is uploaded
        try:
            coverage[index] = vms.find_recordings(window.camera_id, window.start_time_utc, window.end_time_utc)
        except CameraNotFound:
            raise JobCanceled(f"camera {window.camera_id} is unknown to the {vms.vendor} VMS") from None
    outcome = Outcome()
    run.files_total = len(parameters.cameras)
    for index, window in enumerate(parameters.cameras):
        _deliver_window(run, window, coverage[index], outcome)
    return outcome


def _deliver_window(run: JobRun, window: CameraWindow, covered: list[Interval], outcome: Outcome) -> None:
    vms = run.services.vms
    camera, start, end = window.camera_id, window.start_time_utc, window.end_time_utc
    if vms.capabilities.reports_coverage and not covered:
        outcome.missing.append(f"{camera} {_span(start, end)} (no recording)")
        return
    ticket = vms.start_clip(camera, start, end)
    try:
        status = wait_for_clip(
            vms, ticket, timeout=run.services.export_timeout, should_stop=run.is_lost, sleep=run.services.sleep
        )
        if status is None:
            raise LockLostError(f"job {run.job_id}: lock lost while the VMS exported")
        if status.state == "failed":
            outcome.missing.append(f"{camera} {_span(start, end)} (export failed)")
            return
        run.files_total += max(0, len(status.downloads) - 1)
        delivered_any = False
        for download in status.downloads:
            _deliver_download(run, window, download)
            delivered_any = True
        outcome.delivered += int(delivered_any)
        holes = status.missing if not vms.capabilities.reports_coverage else gaps(covered, start, end)
        for hole in clip_to_window([*holes, *status.missing], start, end):
            if hole.duration > GAP_TOLERANCE:
                outcome.missing.append(f"{camera} {_span(hole.start, hole.end)} (no recording)")
        if not delivered_any and not holes:
            outcome.missing.append(f"{camera} {_span(start, end)} (nothing to download)")
    finally:
        vms.cleanup(ticket)


def _deliver_download(run: JobRun, window: CameraWindow, download: Download) -> None:
    vms = run.services.vms
    start = max(download.start, window.start_time_utc)
    end = min(download.end, window.end_time_utc)
    name = f"{window.camera_id}_{iso_stamp(start)}_{iso_stamp(end)}.mp4"
    opened: list = []

    def open_source() -> Iterator[bytes]:
        stream = vms.open_download(download)
        opened.append(stream)
        return iter(stream)

    def complete(ticket, result) -> None:
        run.services.registry.complete_media(
            run.job_id,
            run.lock_token,
            ticket.file_id,
            camera_id=window.camera_id,
            start=start,
            end=end,
            size=result.size,
            sha256=result.sha256,
        )

    try:
        run.deliver(name, "video/mp4", open_source, complete, size_hint=download.size)
    finally:
        for stream in opened:
            stream.close()


# ---- discovery ----------------------------------------------------------------------------------------


def run_discovery(run: JobRun) -> Outcome:
    vms = run.services.vms
    counter = {"devices": 0}

    def document() -> Iterator[bytes]:
        """The §5 document, streamed camera by camera (an account may have thousands)."""
        generated = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        yield json.dumps({"GeneratedUtc": generated, "Vendor": vms.vendor})[:-1].encode() + b', "Devices": ['
        for index, camera in enumerate(vms.list_cameras()):
            counter["devices"] += 1
            yield (b", " if index else b"") + json.dumps(_device(camera)).encode()
        yield b"]}"

    def complete(ticket, result) -> None:
        run.services.registry.complete_discovery(
            run.job_id,
            run.lock_token,
            ticket.file_id,
            device_count=counter["devices"],
            size=result.size,
            sha256=result.sha256,
        )

    run.files_total = 1

    def fresh_document() -> Iterator[bytes]:
        counter["devices"] = 0
        return document()

    run.deliver("discovery.json", "application/json", fresh_document, complete)
    return Outcome(delivered=1)


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


# ---- thumbnails ---------------------------------------------------------------------------------------


def run_thumbnails(run: JobRun, parameters: ThumbnailParameters) -> Outcome:
    vms = run.services.vms
    outcome = Outcome()
    snapshots = []
    for camera_id in parameters.camera_ids:  # all fetched first: an unknown camera cancels before any upload
        try:
            snapshot = vms.get_snapshot(camera_id)
        except CameraNotFound:
            raise JobCanceled(f"camera {camera_id} is unknown to the {vms.vendor} VMS") from None
        except (NoFootage, DeviceUnavailable) as exc:
            outcome.missing.append(f"{camera_id} ({type(exc).__name__})")
            continue
        if not snapshot.content.startswith(JPEG_MAGIC):
            outcome.missing.append(f"{camera_id} (the VMS returned something that is not a JPEG)")
            continue
        snapshots.append((camera_id, snapshot))
    run.files_total = len(snapshots)
    for camera_id, snapshot in snapshots:

        def complete(ticket, result, camera_id=camera_id, captured=snapshot.captured_at) -> None:
            run.services.registry.complete_thumbnail(
                run.job_id,
                run.lock_token,
                ticket.file_id,
                camera_id=camera_id,
                captured=captured,
                size=result.size,
                sha256=result.sha256,
            )

        run.deliver(f"{camera_id}.jpg", "image/jpeg", lambda content=snapshot.content: [content], complete)
        outcome.delivered += 1
    return outcome
