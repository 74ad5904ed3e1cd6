"""A job message becomes a plan of bounded work items — or a cancel, decided before any upload.

- mediarequest: every camera's recorded intervals within its window, cut at wall-clock multiples of
  `MAX_SEGMENT_MINUTES`; one item per piece (one file, occasionally more if the VMS finds a gap the
  listing did not show). Parts of a window with no recording are noted on the plan as missing.
- thumbnail: the cameras in batches of `THUMBNAIL_BATCH`, one snapshot streamed at a time.
- discovery: one item.

Cancel decisions (bad parameters, a camera the VMS does not know, window rules) are made here, for
the whole job, so a job is never canceled after a file was delivered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from shared.agent.errors import JobCanceled
from shared.agent.states import ItemKind
from shared.agent.wiring.services import Services
from shared.agent.work.ledger import OfferedJob, WorkItem
from shared.registry.contract import PARAMETER_MODELS, MediaRequestParameters, ThumbnailParameters
from shared.vms.base import Interval, clip_to_window, gaps
from shared.vms.errors import CameraNotFound
from shared.wire import describe_validation_error

MAX_WINDOW = timedelta(hours=2)
WINDOW_TOLERANCE = timedelta(seconds=1)
GAP_TOLERANCE = timedelta(seconds=2)
THUMBNAIL_BATCH = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Draft:
    """What planning found: the items to run, and what is already known to be missing."""

    items: list[WorkItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%dT%H:%M:%SZ}–{end:%H:%M:%SZ}"


def draft_plan(job: OfferedJob, plan_id: str, services: Services) -> Draft:
    """The job's work items, named `<plan id>-<id>` so that two planning attempts never share a row."""
    parameters = parameters_for(job.job_type, job.parameters)
    if isinstance(parameters, MediaRequestParameters):
        draft = _media(job.job_id, job.generation, parameters, services)
    elif isinstance(parameters, ThumbnailParameters):
        draft = _thumbnails(job.job_id, job.generation, parameters, services)
    else:
        draft = Draft(items=[WorkItem(job.job_id, job.generation, "discovery", ItemKind.DISCOVERY)])
    draft.items = [replace(item, item_id=f"{plan_id}-{item.item_id}") for item in draft.items]
    return draft


def parameters_for(job_type: str, raw: dict[str, Any]) -> object:
    model = PARAMETER_MODELS.get(job_type)
    if model is None:
        raise JobCanceled(f"unsupported job type {job_type!r}: this agent handles {', '.join(PARAMETER_MODELS)}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise JobCanceled(describe_validation_error(exc, source="malformed job parameters")) from None


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


def _media(job_id: str, generation: str, parameters: MediaRequestParameters, services: Services) -> Draft:
    vms = services.vms
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
            for piece in segments(interval, services.max_segment):
                if (camera, piece) in seen:
                    continue  # the same camera and time asked twice: one file
                seen.add((camera, piece))
                item_id = f"m{index:03d}-{_short_hash(camera)}-{int(piece.start.timestamp() * 1000)}"
                draft.items.append(
                    WorkItem(
                        job_id,
                        generation,
                        item_id,
                        ItemKind.MEDIA_SEGMENT,
                        camera_id=camera,
                        start=piece.start,
                        end=piece.end,
                    )
                )
    return draft


def _thumbnails(job_id: str, generation: str, parameters: ThumbnailParameters, services: Services) -> Draft:
    vms = services.vms
    requested = list(dict.fromkeys(parameters.camera_ids))  # in order, each once
    known = {camera.id for camera in vms.list_cameras()}
    unknown = [camera for camera in requested if camera not in known]
    if unknown:
        listed = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise JobCanceled(f"camera(s) {listed} unknown to the {vms.vendor} VMS")
    draft = Draft()
    for number, start in enumerate(range(0, len(requested), THUMBNAIL_BATCH)):
        batch = tuple(requested[start : start + THUMBNAIL_BATCH])
        draft.items.append(WorkItem(job_id, generation, f"t{number:04d}", ItemKind.THUMBNAIL_BATCH, camera_ids=batch))
    return draft


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
