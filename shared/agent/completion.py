"""Finishing: an item counted on its plan, and the job completed by whichever item finished last.

`finish_item` writes the item's final state and the plan's counters in one transaction (ETag on both),
retrying against the plan's newest state when another item finished at the same moment: exactly one
item takes `ItemsRemaining` to 0, and that one moves the plan to Completing and completes the job. If
it dies before the job is completed, any later delivery of any item of the plan finds the plan
Completing and finishes the completion (the Registry's complete is idempotent for one lock).

The outcome follows the protocol: everything delivered → Completed; some delivered → PartiallyCompleted
listing what is missing; nothing delivered → Failed — unless nothing was delivered only because of
temporary trouble (a VMS outage outlasting the retries), in which case the job is released to be
tried again later rather than failed for good.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import timedelta

from shared.agent.errors import LockLostError
from shared.agent.ledger import (
    COMPLETING,
    DELIVERED,
    DONE,
    FAILED,
    MISSING,
    Plan,
    StaleEntry,
    WorkItem,
    utc_now,
)
from shared.agent.records import LockRecord, StaleRecord, log_job_end
from shared.agent.services import Services
from shared.registry.errors import NotOurs, RegistryError

log = logging.getLogger(__name__)

NOTHING_DELIVERED = {"mediarequest": "Video unavailable", "thumbnail": "No image available"}


def finish_item(services: Services, record: LockRecord, item: WorkItem) -> WorkItem:
    """Count `item` (already in its final state, with the ETag it was read with) on its plan."""
    for _ in range(20):
        plan = services.ledger.get_plan(item.job_id, item.generation)
        if plan is None or plan.state not in ("Running", "Planned"):
            raise StaleEntry(f"job {item.job_id}: the plan is gone or no longer running")
        report = plan.items_remaining > 1 and _progress_due(services, plan)
        counted = replace(
            plan,
            items_remaining=plan.items_remaining - 1,
            items_delivered=plan.items_delivered + (item.state == DELIVERED),
            items_missing=plan.items_missing + (item.state == MISSING),
            items_failed=plan.items_failed + (item.state == FAILED),
            files_delivered=plan.files_delivered + item.files_delivered,
            bytes_delivered=plan.bytes_delivered + item.bytes_delivered,
            state=COMPLETING if plan.items_remaining == 1 else plan.state,
            progress_reported_at=utc_now() if report else plan.progress_reported_at,
        )
        try:
            item, plan = services.ledger.finish_item(item, counted)
        except StaleEntry:
            current = services.ledger.get_item(item.job_id, item.generation, item.item_id)
            if current is None or current.etag != item.etag:
                raise  # the item itself changed: it is no longer ours to finish
            continue  # only the plan moved (another item finished): count again on its newest state
        if plan.state == COMPLETING:
            complete_job(services, record, plan)
        elif report:
            _report_progress(services, record, plan)
        return item
    raise StaleEntry(f"job {item.job_id}: the plan kept changing")


def complete_job(services: Services, record: LockRecord, plan: Plan) -> str:
    """Choose the outcome from the ledger and complete (or release) the job, once."""
    items = services.ledger.items(plan.job_id, plan.generation)
    state, message = choose_outcome(plan, items)
    current = services.records.get(record.job_id)
    if current is not None and current.lock_token == record.lock_token and current.state == state:
        _mark_done(services, plan, state, message)  # an earlier delivery completed it, then died
        return state
    if current is None or current.lock_token != record.lock_token or current.terminal:
        log.warning("Not completing job %s: the lock record says the lock is no longer ours", record.job_id)
        return "Lost"
    try:
        if state == "Released":
            services.registry.release(record.job_id, record.lock_token)
        else:
            services.registry.complete(record.job_id, record.lock_token, state, message)
    except NotOurs as exc:
        services.records.transition(record.job_id, "Lost", last_error=str(exc)[:500])
        log_job_end(record, "Lost", str(exc))
        raise LockLostError(str(exc)) from None
    try:  # the record was just read: one write, unless something changed it meanwhile
        services.records.save(current.moved_to(state, last_error=message or ""))
    except StaleRecord:
        services.records.transition(record.job_id, state, last_error=message or "")
    _mark_done(services, plan, state, message)
    log_job_end(record, state, message or "")
    return state


def _mark_done(services: Services, plan: Plan, state: str, message: str | None) -> None:
    with contextlib.suppress(StaleEntry):  # another delivery finished the same completion
        services.ledger.save_plan(replace(plan, state=DONE, outcome=state, outcome_message=message or ""))


def choose_outcome(plan: Plan, items: list[WorkItem]) -> tuple[str, str | None]:
    missing = list(plan.missing)
    transient_only = True
    for item in items:
        missing.extend(item.missing)
        if item.state == FAILED:
            missing.append(f"{item.label()} (failed: {item.last_error[:200]})")
            transient_only = transient_only and item.failure == "transient"
    delivered = sum(item.files_delivered for item in items)
    if not missing:
        return "Completed", None
    listed = "; ".join(missing[:20]) + (f"; and {len(missing) - 20} more" if len(missing) > 20 else "")
    if delivered:
        return "PartiallyCompleted", f"Missing: {listed}"[:1000]
    if any(item.state == FAILED for item in items) and transient_only:
        return "Released", f"Temporarily unavailable: {listed}"[:1000]
    return "Failed", f"{NOTHING_DELIVERED.get(plan.job_type, 'Discovery failed')}: {listed}"[:1000]


def _progress_due(services: Services, plan: Plan) -> bool:
    last = plan.progress_reported_at
    return last is None or utc_now() - last >= timedelta(seconds=services.progress_interval)


def _report_progress(services: Services, record: LockRecord, plan: Plan) -> None:
    done = plan.items_total - plan.items_remaining
    try:
        services.registry.report_progress(record.job_id, record.lock_token, done, max(plan.items_total, 1))
    except NotOurs as exc:
        services.records.transition(record.job_id, "Lost", last_error=str(exc)[:500])
        log_job_end(record, "Lost", str(exc))
    except RegistryError as exc:
        log.warning("Progress report for job %s failed (it is only informative): %s", record.job_id, exc)
