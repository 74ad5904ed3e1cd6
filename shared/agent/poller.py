"""poll_jobs: list available jobs, choose within capacity, lock, record, enqueue.

Choice: supported types only (the list is filtered by type at the Registry); oldest first; and a
share of the capacity — a quarter, at least one slot — reserved for small jobs (thumbnail, discovery)
so they are never starved behind long media requests. An idle poll costs one Registry call and no
storage writes; a poll at full capacity costs no Registry call at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient

from shared.agent.messages import encode_job
from shared.agent.records import LockRecord, LockRecords, StaleRecord
from shared.registry.client import RegistryClient
from shared.registry.contract import JOB_TYPES, Job
from shared.registry.errors import JobGone, LockConflict, RegistryError
from shared.storage import send_message

log = logging.getLogger(__name__)

SMALL_JOB_TYPES = frozenset({"thumbnail", "discovery"})


@dataclass
class PollResult:
    capacity: int = 0
    offered: int = 0
    locked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


def choose(jobs: list[Job], capacity: int) -> list[Job]:
    """Oldest first, with ceil-free reservation: max(1, capacity // 4) slots for small jobs when offered."""
    if capacity <= 0:
        return []

    def age(job: Job) -> tuple[float, str]:
        return (job.created_utc.timestamp() if job.created_utc else float("-inf"), job.id)

    small = sorted((j for j in jobs if j.type in SMALL_JOB_TYPES), key=age)
    reserved = small[: min(len(small), max(1, capacity // 4))]
    rest = sorted((j for j in jobs if j not in reserved), key=age)
    return sorted(reserved + rest[: capacity - len(reserved)], key=age)


def poll(
    registry: RegistryClient,
    records: LockRecords,
    queue: QueueClient,
    *,
    max_in_flight: int,
) -> PollResult:
    result = PollResult()
    result.capacity = max_in_flight - records.count_active()
    if result.capacity <= 0:
        log.info("poll: at capacity (%d jobs in flight); not asking for more", max_in_flight)
        return result
    jobs = registry.list_jobs(types=JOB_TYPES)
    result.offered = len(jobs)
    if not jobs:
        return result
    for job in choose(jobs, result.capacity):
        _take(job, registry, records, queue, result)
    log.info(
        "poll: %d offered, %d locked, %d skipped, %d released (capacity %d)",
        result.offered,
        len(result.locked),
        len(result.skipped),
        len(result.released),
        result.capacity,
    )
    return result


def _take(job: Job, registry: RegistryClient, records: LockRecords, queue: QueueClient, result: PollResult) -> None:
    context = {"job_id": job.id, "job_type": job.type}
    try:
        lock = registry.lock(job.id)
    except (LockConflict, JobGone) as exc:
        log.info("poll: job %s not taken: %s", job.id, type(exc).__name__, extra=context)
        result.skipped.append(job.id)
        return
    try:
        record = records.create(LockRecord(job.id, job.type, lock.lock_token, lock.lock_expiration_utc))
    except (StaleRecord, AzureError) as exc:
        log.error("poll: could not record the lock of job %s (%s); releasing it", job.id, exc, extra=context)
        _release(registry, job, lock.lock_token, result)
        return
    try:
        send_message(queue, encode_job(job))
    except AzureError as exc:
        log.error("poll: could not enqueue job %s (%s); releasing it", job.id, type(exc).__name__, extra=context)
        _release(registry, job, lock.lock_token, result)
        records.transition(job.id, "Released", last_error=f"enqueue failed: {type(exc).__name__}")
        return
    result.locked.append(job.id)
    log.info("poll: locked and queued job %s until %s", job.id, record.lock_expires.isoformat(), extra=context)


def _release(registry: RegistryClient, job: Job, lock_token: str, result: PollResult) -> None:
    try:
        registry.release(job.id, lock_token)
        result.released.append(job.id)
    except RegistryError as exc:
        log.error(
            "poll: releasing job %s failed too (%s); its lock will expire",
            job.id,
            exc,
            extra={"job_id": job.id, "job_type": job.type},
        )
