"""Figures for resilience drills, over all jobs and per job.

- FilesIssued: InitializeUpload calls answered with a ticket. FilesCompleted: files a Complete* call
  completed. FilesRejected: files whose last verification failed (422) and that were never completed.
- DuplicateCompletions: Complete* calls that completed a second, different file for the same piece of
  evidence under one lock: the same job, lock token, completion kind, camera and times (StartTimeUtc and
  EndTimeUtc, or CapturedUtc, compared as instants). A retried Complete* of the same file is not one.
- BytesReceived: every byte storage holds for every ticket issued, abandoned uploads included: per
  ticket blob, the committed length plus the uncommitted blocks, read from storage when asked (see
  UploadStorage.bytes_received for what that can and cannot see).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .simulator import RegistrySimulator

FIGURES = ("FilesIssued", "FilesCompleted", "FilesRejected", "DuplicateCompletions", "BytesReceived")
STORAGE_READERS = 8


def compute_stats(sim: RegistrySimulator, job_id: str | None = None) -> dict[str, Any]:
    jobs = sim.store.stats_snapshot()
    if job_id is not None:
        jobs = [job for job in jobs if job["JobId"] == job_id]
    blobs = [name for job in jobs for name in job["BlobNames"]]
    with ThreadPoolExecutor(max_workers=STORAGE_READERS) as pool:
        received = dict(zip(blobs, pool.map(sim.storage.bytes_received, blobs), strict=True))
    per_job = []
    for job in jobs:
        names = job.pop("BlobNames")
        job["BytesReceived"] = sum(received[name] for name in names)
        per_job.append(job)
    totals = {figure: sum(job[figure] for job in per_job) for figure in FIGURES}
    return {"Jobs": len(per_job), **totals, "PerJob": per_job}
