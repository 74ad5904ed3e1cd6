"""How a job ends on our side: the Registry told (cancel, release), the lock's record moved to its final
state — fenced by the lock's generation — and the one `Job ended` line logged, only by the call whose
record change succeeded. Every path that ends a job comes through here.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from shared.agent.locks.records import LockRecord, LockRecords, log_job_end, utc_now
from shared.agent.states import PlanState, RecordState
from shared.agent.wiring.services import Services
from shared.failures import Disposition, disposition_of
from shared.redact import scrub

log = logging.getLogger(__name__)


def end_job(
    records: LockRecords,
    record: LockRecord,
    state: RecordState,
    detail: str,
    *,
    released: bool = False,
    fresh: bool = False,
) -> bool:
    """Move the record of `record`'s lock to `state`; log `Job ended` if this call did it. False when the
    record had already ended or belongs to a newer lock (fencing): then nothing is written or logged.
    `fresh`: `record` was read just now (its ETag is tried first, saving a read)."""
    detail = scrub(detail)
    moved = records.transition(
        record.job_id,
        state,
        generation=record.generation,
        released=released,
        known=record if fresh else None,
        last_error=detail[:1000],
    )
    if moved is None:
        return False
    log_job_end(moved, state, detail)
    return True


def lose_job(services: Services, record: LockRecord, why: str) -> bool:
    """The Registry says the lock is no longer ours: stop, and say so (once)."""
    return end_job(services.records, record, RecordState.LOST, why)


def cancel_job(services: Services, record: LockRecord, reason: str) -> RecordState:
    """Cancel at the Registry (the job can never be done by this agent), then end the record."""
    log.warning("Canceling job %s: %s", record.job_id, reason, extra={"job_id": record.job_id})
    try:
        services.registry.cancel(record.job_id, record.lock_token, reason[:1000])
    except Exception as exc:
        if disposition_of(exc) is not Disposition.LOST:
            raise
        lose_job(services, record, str(exc))
        return RecordState.LOST
    end_job(services.records, record, RecordState.CANCELED, reason)
    return RecordState.CANCELED


def release_job(services: Services, record: LockRecord, reason: str, *, agent_fault: bool = False) -> RecordState:
    """Release at the Registry so the job can be picked up again later, then end the record.

    `agent_fault`: the cause is the agent's own (a credential refused, a setting wrong). Such a release is
    not held against the job, and the agent pauses: it locks no new job until the cause is gone (pause.py),
    instead of locking and releasing one at every poll."""
    log.error("Releasing job %s so it can be picked up again: %s", record.job_id, reason,
              extra={"job_id": record.job_id})  # fmt: skip
    try:
        services.registry.release(record.job_id, record.lock_token)
    except Exception as exc:  # noqa: BLE001 - the lock then expires on its own; the record still ends
        log.error("Releasing job %s failed too (%s); its lock will expire on its own", record.job_id,
                  scrub(str(exc))[:300])  # fmt: skip
    end_job(services.records, record, RecordState.RELEASED, reason, released=not agent_fault)
    _close_completing_plan(services, record)
    if agent_fault:
        services.pause.pause(reason)
    return RecordState.RELEASED


def _close_completing_plan(services: Services, record: LockRecord) -> None:
    """A plan left Completing (its completion kept failing, and its message was poisoned) is done with:
    nothing will complete this lock's plan any more, and the sweep must not send it on again."""
    try:
        plan = services.ledger.get_plan(record.job_id, record.generation)
        if plan is not None and plan.state == PlanState.COMPLETING:
            services.ledger.save_plan(replace(plan, state=PlanState.DONE, outcome=RecordState.RELEASED))
    except Exception as exc:  # noqa: BLE001 - the record has ended; the plan is only bookkeeping now
        log.warning("Job %s: its plan stays Completing (%s)", record.job_id, type(exc).__name__)


def reason_to_end(record: LockRecord, services: Services) -> str | None:
    """A reason to end a job at once instead of working it again: this agent keeps releasing it, or it is
    older than the maximum job age across its locks. Checked right after each lock (and by the planner)."""
    if record.releases >= services.release_limit:
        return (
            f"this agent released the job {record.releases} times and will not try again "
            f"(RELEASE_LIMIT {services.release_limit}); last: {record.last_error or 'no reason recorded'}"
        )
    age = utc_now() - record.born
    if age > services.max_job_age:
        return (
            f"the job is {age.total_seconds() / 60:.0f} minutes old across {record.locks} lock(s), over "
            f"MAX_JOB_AGE_MINUTES ({services.max_job_age.total_seconds() / 60:.0f}); last: {record.last_error or '-'}"
        )
    return None
