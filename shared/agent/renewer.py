"""renew_locks: keep the locks of in-flight jobs alive, and notice the ones that were lost.

Every non-terminal record whose lock expires within the margin is renewed and its new expiry recorded;
a 409 (or 404/410) marks it `Lost`, which makes its processor stop; a record older than the maximum job
age is released and marked `Abandoned`. Renewals run in parallel so one slow or failing call does not
hold up the others; terminal records are never renewed.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.agent.ledger import generation_of
from shared.agent.records import LockRecord, LockRecords, StaleRecord, log_job_end, utc_now
from shared.registry.client import RegistryClient
from shared.registry.errors import NotOurs, RegistryError
from shared.telemetry import carry_context, job_context

log = logging.getLogger(__name__)


@dataclass
class RenewResult:
    renewed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    untouched: int = 0


def renew_all(
    registry: RegistryClient,
    records: LockRecords,
    *,
    margin: timedelta,
    max_age: timedelta,
    workers: int = 8,
    now: datetime | None = None,
) -> RenewResult:
    now = now or utc_now()
    result = RenewResult()
    due = []
    for record in records.active():
        if now - record.created > max_age:
            due.append((record, "abandon"))
        elif record.lock_expires - now <= margin:
            due.append((record, "renew"))
        else:
            result.untouched += 1
    if not due:
        return result
    with ThreadPoolExecutor(max_workers=min(workers, len(due)), thread_name_prefix="renew") as pool:
        renew_one = carry_context(lambda item: _one(registry, records, *item))  # telemetry: the run's trace
        for job_id, outcome in pool.map(renew_one, due):
            getattr(result, outcome).append(job_id)
    log.info(
        "renew: %d renewed, %d lost, %d abandoned, %d failed, %d not due",
        len(result.renewed),
        len(result.lost),
        len(result.abandoned),
        len(result.failed),
        result.untouched,
    )
    return result


def _one(registry: RegistryClient, records: LockRecords, record: LockRecord, action: str) -> tuple[str, str]:
    """One record, with its job's dimensions on every log line and span (telemetry)."""
    with job_context(job_id=record.job_id, job_type=record.job_type, generation=generation_of(record.lock_token)):
        return _renew_one(registry, records, record, action)


def _renew_one(registry: RegistryClient, records: LockRecords, record: LockRecord, action: str) -> tuple[str, str]:
    context = {"job_id": record.job_id, "job_type": record.job_type, "attempt": record.attempts}
    try:
        if action == "abandon":
            log.warning("Job older than the maximum job age; releasing it", extra=context)
            with contextlib.suppress(NotOurs):
                registry.release(record.job_id, record.lock_token)
            if records.transition(record.job_id, "Abandoned", last_error="exceeded the maximum job age"):
                log_job_end(record, "Abandoned", "exceeded the maximum job age")
            return record.job_id, "abandoned"
        lock = registry.renew(record.job_id, record.lock_token)
    except NotOurs as exc:
        log.warning("Lock lost (%s): marking the job Lost so its processor stops", type(exc).__name__, extra=context)
        if records.transition(record.job_id, "Lost", last_error=str(exc)[:500]):
            log_job_end(record, "Lost", str(exc))
        return record.job_id, "lost"
    except RegistryError as exc:
        log.error("Renewal failed, will retry on the next run: %s", exc, extra=context)
        return record.job_id, "failed"
    for _ in range(5):  # record the new expiry; a run may be changing the record meanwhile
        current = records.get(record.job_id)
        if current is None or current.terminal or current.lock_token != record.lock_token:
            break
        try:
            records.save(current.moved_to(current.state, lock_expires=lock.lock_expiration_utc))
            break
        except StaleRecord:
            continue
    return record.job_id, "renewed"
