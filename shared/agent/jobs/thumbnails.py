"""thumbnail: a current snapshot of each of a list of cameras.

Planning: every camera must be known to the VMS (else the job is canceled); the cameras, each once and in
order, in batches of `THUMBNAIL_BATCH`. An item: one snapshot at a time — fetched, checked, uploaded, then
the next (memory stays flat); a camera without an image is recorded as missing, with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from shared.agent.errors import JobCanceled
from shared.agent.jobs.base import Done, Draft, ItemRun, JobType, Planning
from shared.agent.states import FileKind, FileState, ItemKind
from shared.agent.work.ledger import FileEntry, OfferedJob, WorkItem
from shared.agent.work.naming import thumbnail_name
from shared.registry import contract
from shared.registry.client import RegistryClient
from shared.vms.errors import CameraNotFound, DeviceUnavailable, NoFootage

THUMBNAIL_BATCH = 20
JPEG_MAGIC = b"\xff\xd8\xff"


class Thumbnail(JobType):
    name = contract.THUMBNAIL
    parameters = contract.ThumbnailParameters
    item_kind = ItemKind.THUMBNAIL_BATCH
    file_kind = FileKind.THUMBNAIL
    small = True
    nothing_delivered = "No image available"

    def plan(self, job: OfferedJob, parameters: Any, planning: Planning) -> Draft:
        assert isinstance(parameters, contract.ThumbnailParameters)
        vms = planning.vms
        requested = list(dict.fromkeys(parameters.camera_ids))  # in order, each once
        unknown = planning.cameras.unknown(vms, requested)
        if unknown:
            listed = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise JobCanceled(f"camera(s) {listed} unknown to the {vms.vendor} VMS")
        draft = Draft()
        for number, start in enumerate(range(0, len(requested), THUMBNAIL_BATCH)):
            batch = tuple(requested[start : start + THUMBNAIL_BATCH])
            draft.items.append(WorkItem(job.job_id, job.generation, f"t{number:04d}", self.item_kind, camera_ids=batch))
        return draft

    def run(self, run: ItemRun) -> Done:
        vms, guard = run.vms, run.guard
        missing = []
        for camera in guard.item.camera_ids:
            earlier = next((f for f in guard.item.files if f.facts.get("CameraId") == camera), None)
            if earlier is not None:
                if earlier.state == FileState.MISSING:
                    missing.append(earlier.facts.get("Why", f"{camera} (no image)"))
                    continue
                if earlier.state == FileState.DELIVERED or run.files.resume(earlier) is not None:
                    continue
            guard.check()
            try:
                snapshot = vms.get_snapshot(camera)
            except (NoFootage, DeviceUnavailable, CameraNotFound) as exc:
                missing.append(_missing(run, camera, f"{camera} ({type(exc).__name__})"))
                continue
            if not snapshot.content.startswith(JPEG_MAGIC):
                why = f"{camera} (the VMS returned something that is not a JPEG)"
                missing.append(_missing(run, camera, why))
                continue
            captured = snapshot.captured_at.astimezone(UTC)
            facts = {"CameraId": camera, "CapturedUtc": captured.isoformat()}
            entry = FileEntry(thumbnail_name(camera, captured), FileKind.THUMBNAIL, facts)
            content = snapshot.content
            del snapshot
            run.files.deliver(entry, "image/jpeg", partial(iter, (content,)), size_hint=len(content))
        return Done(missing)

    def complete(self, registry: RegistryClient, job_id: str, lock_token: str, entry: FileEntry) -> None:
        registry.complete_thumbnail(
            job_id,
            lock_token,
            entry.file_id,
            camera_id=entry.facts["CameraId"],
            captured=datetime.fromisoformat(entry.facts["CapturedUtc"]),
            size=entry.size,
            sha256=entry.sha256,
        )


def _missing(run: ItemRun, camera: str, why: str) -> str:
    entry = FileEntry(
        f"missing-{camera}", FileKind.THUMBNAIL, {"CameraId": camera, "Why": why}, state=FileState.MISSING
    )
    run.guard.save(files=run.item.with_file(entry).files)
    return why
