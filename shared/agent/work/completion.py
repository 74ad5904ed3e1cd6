"""Finishing: an item counted on its plan, and the job completed by whichever item finished last.

`finish_item` writes the item's final state and the plan's counters in one transaction (ETag on both),
retrying against the plan's newest state when another item finished at the same moment: exactly one
item takes `ItemsRemaining` to 0, and that one moves the plan to Completing and completes the job. If
it dies before the job is completed, any later delivery of any message of the job finds the plan
Completing and finishes the completion (the Registry's complete is idempotent for one lock); and the
sweep (sweep.py) sends such a message for a plan left Completing without one.

The outcome follows the protocol: everything delivered → Completed; some delivered → PartiallyCompleted
listing what is missing; nothing delivered → Failed — unless nothing was delivered only because of
temporary trouble (a VMS outage outlasting the retries), in which case the job is released to be
tried again later rather than failed for good (a bounded number of times: RELEASE_LIMIT).

A completion the Registry refuses (400) cannot succeed by trying again: the job is canceled with the
reason at once and its record ends `Refused` (an alert watches for it). A completion that fails for
other reasons (an outage) is retried through the queue; its message reaches the poison queue after
MAX_DEQUEUE_COUNT tries, and the job is then released (processor.py).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import timedelta

from shared.agent.errors import LockGone
from shared.agent.jobs import catalog
from shared.agent.locks.records import LockRecord, log_job_end
from shared.agent.states import FailureKind, ItemState, PlanState, RecordState
from shared.agent.wiring.services import Services
from shared.agent.work.ending import end_job, lose_job, release_job
from shared.agent.work.ledger import LedgerRowChanged, Plan, WorkItem, utc_now
from shared.redact import scrub
from shared.registry.errors import NotOurs, RegistryBadRequest, RegistryError

log = logging.getLogger(__name__)

LISTED = 20


def finish_item(
    services: Services, record: LockRecord, item: WorkItem, *, owner: str | None = None, plan: Plan | None = None
) -> tuple[WorkItem, Plan]:
    """Count `item` (already in its final state, with the ETag it was read with) on its plan; returns the
    stored item and plan (Completing when this was the last item: the caller completes the job).

    `plan`: the plan as this run holds it (with its ETag), tried first instead of reading it; when it
    changed meanwhile (another item finished), the newest plan is read and the count made again."""
    held = plan
    for _ in range(20):
        plan, held = held or services.ledger.get_plan(item.job_id, item.generation), None
        if plan is None or plan.state not in (PlanState.UNDER_WAY, PlanState.PLANNED) or not plan.owns(item):
            raise LedgerRowChanged(f"job {item.job_id}: the plan is gone or no longer running")
        report = plan.items_remaining > 1 and _progress_due(services, plan)
        counted = replace(
            plan,
            items_remaining=plan.items_remaining - 1,
            items_delivered=plan.items_delivered + (item.state == ItemState.DELIVERED),
            items_missing=plan.items_missing + (item.state == ItemState.MISSING),
            items_failed=plan.items_failed + (item.state == ItemState.FAILED),
            files_delivered=plan.files_delivered + item.files_delivered,
            bytes_delivered=plan.bytes_delivered + item.bytes_delivered,
            state=PlanState.COMPLETING if plan.items_remaining == 1 else plan.state,
            progress_reported_at=utc_now() if report else plan.progress_reported_at,
        )
        try:
            stored_item, stored_plan = services.ledger.finish_item(item, counted)
        except LedgerRowChanged:
            current = services.ledger.get_item(item.job_id, item.generation, item.item_id)
            if current is None:
                raise
            if current.etag != item.etag:
                if owner is None or current.owner != owner or current.state != ItemState.RUNNING:
                    raise  # another run owns the item now: it is no longer ours to finish
                item = replace(item, etag=current.etag)  # touched (the sweep), still ours: finish it again
            continue  # only the plan moved (another item finished): count again on its newest state
        if report:
            _report_progress(services, record, stored_plan)
        return stored_item, stored_plan
    raise LedgerRowChanged(f"job {item.job_id}: the plan kept changing")


def complete_job(
    services: Services, record: LockRecord, plan: Plan, *, items: list[WorkItem] | None = None
) -> RecordState:
    """Choose the outcome from the ledger and complete (or release) the job, once.

    `record`: the lock record as this run read or last wrote it (its ETag is tried first when it ends: if
    it changed since, e.g. renewed, it is read again). `items`: every item of the plan, when the caller
    holds them all (a one-item plan's finishing run), saving the query."""
    if items is None:
        items = services.ledger.items(plan)
    state, message = choose_outcome(plan, items, services.ledger.gaps(plan) if plan.gaps_total else [])
    if record.state == state:
        # an earlier delivery ended the record, then died (or lost the answer) before marking the plan Done,
        # perhaps before its `Job ended` line: say it here (at least once rather than perhaps never)
        log_job_end(record, state, message or "")
        _mark_done(services, plan, state, message)
        return state
    if record.terminal:
        # ended another way (lost, released, canceled) while this plan waited to complete: nothing will
        # complete this lock's plan any more, so it is closed with the record's outcome (never left Completing)
        log.warning("Not completing job %s: its lock record ended as %s", record.job_id, record.state)
        _mark_done(services, plan, record.state, record.last_error or f"the lock record ended as {record.state}")
        return record.state
    if state == RecordState.RELEASED:
        release_job(services, record, message or "temporarily unavailable")
        _mark_done(services, plan, state, message)
        return state
    try:
        services.registry.complete(record.job_id, record.lock_token, state, message)
    except NotOurs as exc:
        lose_job(services, record, str(exc))
        _mark_done(services, plan, RecordState.LOST, scrub(str(exc))[:1000])
        raise LockGone(str(exc)) from None
    except RegistryBadRequest as exc:
        return _refused(services, record, plan, state, exc)
    except Exception as exc:
        _note(services, plan, f"completing as {state} failed: {scrub(str(exc))[:300]}")
        raise
    if not end_job(services.records, record, state, message or "", fresh=True):
        # the record ended meanwhile: by another delivery of this same completion (then the Registry's
        # complete was a repeat, and that delivery said `Job ended`), or its lock was lost (then the
        # Registry refused the complete, above)
        ended = services.records.get(record.job_id)
        if ended is None or ended.generation != record.generation or ended.state != state:
            log.warning("Job %s: completed as %s, but its lock record had ended as %s", record.job_id, state,
                        ended.state if ended is not None else "gone")  # fmt: skip
    _mark_done(services, plan, state, message)
    return state


def _refused(
    services: Services, record: LockRecord, plan: Plan, state: RecordState, exc: RegistryBadRequest
) -> RecordState:
    """The Registry will not take this completion: trying again cannot help. Cancel with the reason (so the
    job is not left locked until the lock expires), and end the record Refused."""
    reason = scrub(f"the Registry refused to complete the job as {state}: {exc}")[:1000]
    log.error("Job %s: %s", record.job_id, reason, extra={"job_id": record.job_id, "job_type": record.job_type})
    try:
        services.registry.cancel(record.job_id, record.lock_token, reason)
    except RegistryError as cancel_error:
        log.error("Canceling job %s failed too (%s); its lock will expire on its own", record.job_id,
                  scrub(str(cancel_error))[:300])  # fmt: skip
    end_job(services.records, record, RecordState.REFUSED, reason)
    _mark_done(services, plan, RecordState.REFUSED, reason)
    return RecordState.REFUSED


def _note(services: Services, plan: Plan, error: str) -> None:
    """Say on the plan that completing failed (and when), so the sweep leaves its retries alone."""
    current = services.ledger.get_plan(plan.job_id, plan.generation)
    if current is not None and current.state == PlanState.COMPLETING:
        with contextlib.suppress(LedgerRowChanged):
            services.ledger.save_plan(replace(current, outcome_message=error))


def _mark_done(services: Services, plan: Plan, state: RecordState, message: str | None) -> None:
    """The plan Done with its outcome: first on the plan as the caller holds it (its ETag is usually the
    newest: the last item's transaction), read again only if it changed since."""

    def done(of: Plan) -> Plan:
        return replace(of, state=PlanState.DONE, outcome=state, outcome_message=message or "")

    try:
        services.ledger.save_plan(done(plan))
        return
    except LedgerRowChanged:
        current = services.ledger.get_plan(plan.job_id, plan.generation)
    if current is not None and current.state != PlanState.DONE:
        with contextlib.suppress(LedgerRowChanged):  # another delivery finished the same completion
            services.ledger.save_plan(done(current))


def choose_outcome(plan: Plan, items: list[WorkItem], gaps: list[str] | None = None) -> tuple[RecordState, str | None]:
    missing = list(gaps or [])
    missing_count = max(plan.gaps_total, len(missing))
    transient_only = True
    for item in items:
        missing.extend(item.missing)
        missing_count += len(item.missing)
        if item.state == ItemState.FAILED:
            missing.append(f"{item.label()} (failed: {item.last_error[:200]})")
            missing_count += 1
            transient_only = transient_only and item.failure == FailureKind.TRANSIENT
    delivered = sum(item.files_delivered for item in items)
    if not missing_count:
        return RecordState.COMPLETED, None
    listed = "; ".join(missing[:LISTED])
    if missing_count > LISTED:
        listed += f"; and {missing_count - LISTED} more"
    if delivered:
        return RecordState.PARTIALLY_COMPLETED, f"Missing: {listed}"[:1000]
    if any(item.state == ItemState.FAILED for item in items) and transient_only:
        return RecordState.RELEASED, f"Temporarily unavailable: {listed}"[:1000]
    job_type = catalog.job_type(plan.job_type)
    nothing = job_type.nothing_delivered if job_type is not None else "Nothing delivered"
    return RecordState.FAILED, f"{nothing}: {listed}"[:1000]


def _progress_due(services: Services, plan: Plan) -> bool:
    last = plan.progress_reported_at
    return last is None or utc_now() - last >= timedelta(seconds=services.progress_interval)


def _report_progress(services: Services, record: LockRecord, plan: Plan) -> None:
    done = plan.items_total - plan.items_remaining
    try:
        services.registry.report_progress(record.job_id, record.lock_token, done, max(plan.items_total, 1))
    except NotOurs as exc:
        lose_job(services, record, str(exc))
    except RegistryError as exc:
        log.warning("Progress report for job %s failed (it is only informative): %s", record.job_id, exc)
