"""renew_locks: keep the locks of in-flight jobs alive, notice the ones that were lost, and sweep.

Every active record (from the active index, never a scan of the history) whose lock expires within the
margin is renewed and its new expiry recorded — in this host's clock, from the remaining time the
Registry states (shared/registry/client.py), so a host whose clock is off still renews in time. A 409
(or 404/410) marks it `Lost`, which makes its runs stop — unless its plan is `Completing`: then the
Registry may have refused the renewal only because our `complete` just ended the lock, and the
completion (running, or sent again by the sweep) decides how the job ends. A job older than the maximum
job age (counted from its first lock, across re-locks) is released and marked `Abandoned`. Every change is fenced by the
lock's generation: a renewal answered 409 for an old lock never marks a newer lock's record.

Renewals run in parallel so one slow or failing call does not hold up the others. Then the sweep
(sweep.py) puts back on the queue what no live run carries on, and, at most hourly, retention removes
what finished long ago.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.agent.locks.records import LockRecord, utc_now
from shared.agent.locks.sweep import SweepResult, retain, sweep
from shared.agent.states import PlanState, RecordState
from shared.agent.wiring.services import Services
from shared.agent.work.ending import end_job, lose_job
from shared.redact import scrub
from shared.registry.errors import NotOurs
from shared.telemetry import carry_context, job_context

log = logging.getLogger(__name__)


@dataclass
class RenewResult:
    renewed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    completing: list[str] = field(default_factory=list)
    """Renewal refused while the job's completion is under way: left to the completion."""
    untouched: int = 0
    swept: SweepResult = field(default_factory=SweepResult)


def renew_all(
    services: Services,
    *,
    margin: timedelta,
    workers: int = 8,
    now: datetime | None = None,
) -> RenewResult:
    now = now or utc_now()
    result = RenewResult()
    due, active = [], []
    for record in services.records.active():
        active.append(record)
        if now - record.born > services.max_job_age:
            due.append((record, "abandon"))
        elif record.lock_expires - now <= margin:
            due.append((record, "renew"))
        else:
            result.untouched += 1
    if due:
        with ThreadPoolExecutor(max_workers=min(workers, len(due)), thread_name_prefix="renew") as pool:
            renew_one = carry_context(lambda item: _one(services, *item))  # telemetry: the run's trace
            for job_id, outcome in pool.map(renew_one, due):
                getattr(result, outcome).append(job_id)
        log.info(
            "renew: %d renewed, %d lost, %d abandoned, %d failed, %d completing, %d not due",
            len(result.renewed),
            len(result.lost),
            len(result.abandoned),
            len(result.failed),
            len(result.completing),
            result.untouched,
        )
    ended = set(result.lost) | set(result.abandoned)
    result.swept = sweep(services, [record for record in active if record.job_id not in ended])
    try:
        retain(services)
    except Exception as exc:  # noqa: BLE001 - retention waits for the next run; renewals must not fail for it
        log.warning("retention: skipped this run (%s)", type(exc).__name__)
    return result


def _one(services: Services, record: LockRecord, action: str) -> tuple[str, str]:
    """One record, with its job's dimensions on every log line and span (telemetry)."""
    with job_context(job_id=record.job_id, job_type=record.job_type, generation=record.generation):
        return _renew_one(services, record, action)


def _refused(services: Services, record: LockRecord, exc: NotOurs, context: dict[str, object]) -> tuple[str, str]:
    """The Registry refused the renewal. While the job's plan is Completing, that is what a `complete`
    accepted a moment ago looks like (the lock ended with it): marking the record Lost then would be false,
    and would leave the plan Completing for good. The completion itself learns the truth — its `complete`
    (repeated, idempotent for one lock) is accepted or refused — so it is left to decide."""
    try:
        plan = services.ledger.get_plan(record.job_id, record.generation)
    except Exception as read_error:  # noqa: BLE001 - decided at the next run; the lock is not renewed anyway
        log.warning("Renewal refused (%s), and the job's plan could not be read (%s); deciding next run",
                    type(exc).__name__, type(read_error).__name__, extra=context)  # fmt: skip
        return record.job_id, "failed"
    if plan is not None and plan.state == PlanState.COMPLETING:
        log.info("Renewal refused while the job is completing (%s); its completion decides how it ends",
                 type(exc).__name__, extra=context)  # fmt: skip
        return record.job_id, "completing"
    log.warning("Lock lost (%s): marking the job Lost so its runs stop", type(exc).__name__, extra=context)
    lose_job(services, record, str(exc))
    return record.job_id, "lost"


def _renew_one(services: Services, record: LockRecord, action: str) -> tuple[str, str]:
    context = {"job_id": record.job_id, "job_type": record.job_type, "attempt": record.attempts}
    registry, records = services.registry, services.records
    try:
        if action == "abandon":
            age = (utc_now() - record.born).total_seconds() / 60
            log.warning("Job older than the maximum job age (%.0f minutes across its locks); releasing it", age,
                        extra=context)  # fmt: skip
            with contextlib.suppress(NotOurs):
                registry.release(record.job_id, record.lock_token)
            end_job(
                services.records,
                record,
                RecordState.ABANDONED,
                f"exceeded the maximum job age ({age:.0f} minutes)",
                released=True,
            )
            return record.job_id, "abandoned"
        lock = registry.renew(record.job_id, record.lock_token)
    except NotOurs as exc:
        return _refused(services, record, exc, context)
    except Exception as exc:  # noqa: BLE001 - one job's trouble never stops the others, the sweep or retention
        log.error("Renewal failed, will retry on the next run: %s", scrub(str(exc))[:300], extra=context)
        return record.job_id, "failed"
    try:
        records.transition(record.job_id, None, generation=record.generation, lock_expires=lock.lock_expiration_utc)
    except Exception as exc:  # noqa: BLE001 - renewed at the Registry; the record learns it next time
        log.warning("Renewed, but recording the new expiry failed (%s)", type(exc).__name__, extra=context)
    return record.job_id, "renewed"
