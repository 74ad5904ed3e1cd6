"""One item message: claim the work item, run it, and leave it final or queued for later — never lost.

Ownership is decided in storage. A run claims the item with a compare-and-swap (owner = message id,
attempts + 1, heartbeat). A message that replaces the owner's message (its run died: the processor swaps
a redelivered message for a fresh copy naming it as `Previous`) takes the item over at once; any other
message for an item whose heartbeat is fresh is put back on the queue for when that heartbeat would
have gone stale, so an item is never stranded without a message and never run twice at once. A run
that loses a race writes nothing more: its next compare-and-swap fails and it stops (TakenOver).

What bounds an item: `ITEM_FAILURE_LIMIT` failures the agent caught, or twice as many runs that never
reported back (their worker died). Waiting for the VMS is neither: an item waiting for an export is
bounded by the export's own deadline (`EXPORT_TIMEOUT_SECONDS` from when it started), after which it
fails with that reason.

Outcomes (returned for logs and tests): `ItemOutcome` (shared/agent/states.py).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import datetime, timedelta

from shared.agent.errors import ExportTimedOut, TakenOver
from shared.agent.jobs import catalog
from shared.agent.jobs.base import Done, ItemRun, Waiting
from shared.agent.locks.records import LockRecord
from shared.agent.states import FailureKind, ItemOutcome, ItemState, PlanState
from shared.agent.wiring.services import Services
from shared.agent.work.backoff import backoff
from shared.agent.work.completion import complete_job, finish_item
from shared.agent.work.delivery import FileDelivery
from shared.agent.work.ending import lose_job, release_job
from shared.agent.work.guard import ItemGuard
from shared.agent.work.ledger import LedgerRowChanged, Plan, WorkItem, utc_now
from shared.agent.work.messages import ItemMessage, encode_item
from shared.failures import Disposition, disposition_of
from shared.redact import scrub
from shared.storage import send_message
from shared.telemetry import bind

log = logging.getLogger(__name__)

CRASH_ALLOWANCE = 2
"""Runs that never reported back (worker recycled or killed) may be ITEM_FAILURE_LIMIT × 2 before the item
is given up; failures (errors the agent caught) only ITEM_FAILURE_LIMIT."""
CLEANUP_ATTEMPTS = 4
CLEANUP_RETRY_SECONDS = 60
ITEM_OUTCOMES: dict[Disposition, ItemOutcome] = {
    Disposition.TAKEN_OVER: ItemOutcome.TAKEN_OVER,
    Disposition.LOST: ItemOutcome.LOST,
    Disposition.MISCONFIGURED: ItemOutcome.RELEASED,
    Disposition.PERMANENT: ItemOutcome.FAILED,
    Disposition.RETRY_LATER: ItemOutcome.RETRY_LATER,
    # Decided for the whole job while planning (an unknown camera cancels it, a camera without an image is
    # reported missing); met while an item runs (a camera gone since), the item is retried, then given up.
    Disposition.CANCEL: ItemOutcome.RETRY_LATER,
    Disposition.REPORT_MISSING: ItemOutcome.RETRY_LATER,
}
"""What a failure of a running work item leads to, by the error's disposition (shared/failures.py)."""


def item_outcome(exc: BaseException) -> ItemOutcome:
    return ITEM_OUTCOMES[disposition_of(exc)]


def run_item(message: ItemMessage, *, message_id: str, services: Services) -> ItemOutcome:
    record = services.records.get(message.job_id)
    item = services.ledger.get_item(message.job_id, message.generation, message.item_id)
    if record is None or item is None:
        log.warning("Item %s of job %s: no such lock record or item; ignoring", message.item_id, message.job_id)
        return ItemOutcome.UNKNOWN
    bind(job_type=record.job_type)  # telemetry
    if record.terminal or record.generation != message.generation:
        if item.final and record.generation == message.generation:
            plan = services.ledger.get_plan(item.job_id, item.generation)
            if plan is not None and plan.state == PlanState.COMPLETING and plan.owns(item):
                complete_job(services, record, plan)  # the record ended; the plan was never marked Done
        clean_up(services, item, attempt=message.cleanup)
        return ItemOutcome.STALE
    if item.final:
        plan = services.ledger.get_plan(item.job_id, item.generation)
        if plan is not None and plan.state == PlanState.COMPLETING and plan.owns(item):
            complete_job(services, record, plan)  # the item that finished last died before completing
        clean_up(services, item, attempt=message.cleanup)  # in case its run died before cleaning up
        return ItemOutcome.DUPLICATE
    owner = message_id
    held_elsewhere = item.state == ItemState.RUNNING and item.owner not in (message_id, message.previous)
    stale_after = timedelta(seconds=services.stale_after)
    if held_elsewhere and item.heartbeat is not None and utc_now() - item.heartbeat < stale_after:
        requeue(services, item, services.stale_after)
        return ItemOutcome.DEFERRED
    limit = services.item_failure_limit
    if item.failures >= limit or item.unfinished_runs >= limit * CRASH_ALLOWANCE:
        if item.failures >= limit:
            what = f"{item.failures} failures; last error: {item.last_error or '-'}"
        else:
            what = f"{item.unfinished_runs} runs that never finished (their worker died)"
        given_up = replace(
            item, state=ItemState.FAILED, failure=FailureKind.TRANSIENT, last_error=f"gave up after {what}"
        )
        return _finish(services, record, given_up)
    try:
        claimed = services.ledger.save_item(claim(item, owner))
    except LedgerRowChanged:
        requeue(services, item, 1.0)  # someone else wrote it a moment ago: look again shortly
        return ItemOutcome.DEFERRED
    return run_claimed(services, record, claimed, owner)


def claim(item: WorkItem, owner: str) -> WorkItem:
    """The item as a run owned by `owner` holds it: Running, one more attempt, a fresh heartbeat."""
    now = utc_now()
    return replace(item, state=ItemState.RUNNING, owner=owner, attempts=item.attempts + 1, heartbeat=now, due=None)


def run_claimed(
    services: Services, record: LockRecord, claimed: WorkItem, owner: str, *, plan: Plan | None = None
) -> ItemOutcome:
    """Run an item this run has claimed (state Running, owned by `owner`, with its ETag). `plan`: the plan
    as the run holds it, when the planning run itself runs its job's only item (processor.py)."""
    bind(item_id=claimed.item_id)  # telemetry: the planning run of a one-item job runs its item too
    context = {"job_id": claimed.job_id, "item_id": claimed.item_id, "attempt": claimed.attempts}
    log.info("Item %s (%s) of job %s: attempt %d", claimed.item_id, claimed.label(), claimed.job_id,
             claimed.attempts, extra=context)  # fmt: skip
    guard = ItemGuard(
        record,
        claimed,
        owner,
        ledger=services.ledger,
        records=services.records,
        registry=services.registry,
        heartbeat_every=services.heartbeat_every,
    )
    with guard:
        return _execute(guard, services, record, plan)


def _run(guard: ItemGuard, services: Services) -> Done | Waiting:
    """The item, run by its job type with what it may use."""
    job_type = catalog.for_item(guard.item.kind)
    delivery = FileDelivery(guard, job_type, registry=services.registry, uploader=services.uploader)
    run = ItemRun(
        guard=guard,
        vms=services.vms,
        files=delivery,
        wait_in_run=services.wait_in_run,
        export_timeout=services.export_timeout,
        sleep=services.sleep,
    )
    return job_type.run(run)


def _execute(guard: ItemGuard, services: Services, record: LockRecord, plan: Plan | None) -> ItemOutcome:
    try:
        result = _run(guard, services)
    except Exception as exc:  # noqa: BLE001 - every failure is handled as its error says (item_outcome)
        guard.stop_heartbeat()
        return _failed(guard, services, record, exc)
    guard.stop_heartbeat()
    if isinstance(result, Waiting):
        item = guard.item
        requeue(services, item, result.delay)
        with contextlib.suppress(TakenOver):
            guard.save(state=ItemState.PENDING, owner="", heartbeat=None, waits=item.waits + 1, due=_due(result.delay))
        return ItemOutcome.WAITING
    final = replace(
        guard.item,
        state=ItemState.DELIVERED if guard.item.files_delivered else ItemState.MISSING,
        missing=tuple(result.missing),
        owner="",
        bytes_in_flight=0,
        last_error="",
    )
    return _finish(services, record, final, owner=guard.owner, plan=plan)  # a failure to complete escapes: retried


def _failed(guard: ItemGuard, services: Services, record: LockRecord, exc: Exception) -> ItemOutcome:
    item = guard.item
    outcome = item_outcome(exc)
    if outcome == ItemOutcome.TAKEN_OVER:
        log.warning("Item %s of job %s was taken over by another run; stopping", item.item_id, item.job_id)
        return outcome
    if outcome == ItemOutcome.LOST:
        return _lost(services, record, item, exc)
    if outcome == ItemOutcome.RELEASED:
        return _release_misconfigured(services, record, guard, exc)
    reason = scrub(f"{type(exc).__name__}: {exc}")[:500]
    if outcome == ItemOutcome.FAILED:
        failure = FailureKind.TIMEOUT if isinstance(exc, ExportTimedOut) else FailureKind.PERMANENT
        log.error("Item %s of job %s failed (%s): %s", item.item_id, item.job_id, failure, reason)
        return _finish(services, record, replace(item, state=ItemState.FAILED, failure=failure, last_error=reason))
    delay = backoff(services.retry_delay, item.failures + 1)
    log.warning(
        "Item %s of job %s failed on attempt %d, retrying in %.0f s: %s",
        item.item_id,
        item.job_id,
        item.attempts,
        delay,
        reason,
    )
    requeue(services, item, delay)
    with contextlib.suppress(TakenOver):
        guard.save(
            state=ItemState.PENDING,
            owner="",
            heartbeat=None,
            due=_due(delay),
            last_error=reason,
            bytes_in_flight=0,
            failures=item.failures + 1,
        )
    return ItemOutcome.RETRY_LATER


def _finish(
    services: Services, record: LockRecord, item: WorkItem, *, owner: str | None = None, plan: Plan | None = None
) -> ItemOutcome:
    """Count the final item on its plan (completing the job when it was the last), then remove its VMS
    artefacts: only once the ledger says it is done, so a retry never polls an export already deleted."""
    try:
        finished, plan = finish_item(services, record, item, owner=owner, plan=plan)
    except LedgerRowChanged:
        log.warning("Item %s of job %s changed while finishing; another run has it", item.item_id, item.job_id)
        return ItemOutcome.TAKEN_OVER
    except Exception as exc:
        if disposition_of(exc) is not Disposition.LOST:
            raise
        return _lost(services, record, item, exc)
    clean_up(services, finished)
    if plan.state == PlanState.COMPLETING:
        only = [finished] if plan.items_total == 1 else None  # a one-item plan: its item is all there is
        complete_job(services, record, plan, items=only)
    return ItemOutcome(item.state)  # Delivered, Missing or Failed


def _lost(services: Services, record: LockRecord, item: WorkItem, exc: Exception) -> ItemOutcome:
    log.warning("Lock of job %s lost (%s); item %s stops without completing", record.job_id, exc, item.item_id)
    lose_job(services, record, str(exc))
    clean_up(services, item)
    return ItemOutcome.LOST


def _release_misconfigured(services: Services, record: LockRecord, guard: ItemGuard, exc: Exception) -> ItemOutcome:
    """Our configuration is wrong: the investigator's request is not at fault, so release it for later, and
    pause the agent until the cause is fixed."""
    reason = scrub(f"{exc}")[:500]
    log.error("Job %s released: the agent's configuration must be fixed: %s", record.job_id, reason)
    clean_up(services, guard.item)
    with contextlib.suppress(TakenOver):
        guard.save(state=ItemState.PENDING, owner="", heartbeat=None, last_error=reason)
    release_job(services, record, f"configuration: {reason}", agent_fault=True)
    return ItemOutcome.RELEASED


def _due(delay: float) -> datetime:
    return utc_now() + timedelta(seconds=max(0.0, delay))


def requeue(services: Services, item: WorkItem, delay: float) -> None:
    """Put the item's message back, visible after `delay` seconds (storage, not memory, remembers it)."""
    body = encode_item(item.job_id, item.generation, item.item_id)
    send_message(services.queue, body, visibility_timeout=max(0, round(delay)))


def clean_up(services: Services, item: WorkItem, *, attempt: int = 0) -> None:
    """Delete the item's VMS artefacts (exports, clips, archive copies) — those its ticket names, or, when
    only the intent was recorded (a run died inside start_clip), those carrying its tag — then forget the
    ticket. A failure never fails the run: the message comes back later to try again (CLEANUP_ATTEMPTS)."""
    if item.ticket is None:
        return
    try:
        if item.ticket.get("vendor"):  # the ticket start_clip returned names everything it created
            services.vms.cleanup(item.ticket)
        else:  # only the intent was recorded: find what the run that died had created, by its tag
            services.vms.remove_tagged(item.ticket["tag"])
    except Exception as exc:  # noqa: BLE001 - retried through the queue below; the adapter logs specifics
        if attempt + 1 >= CLEANUP_ATTEMPTS:
            log.error(
                "Could not remove the VMS export of item %s of job %s after %d tries (%s): remove it by hand "
                "(ticket in the ledger)",
                item.item_id,
                item.job_id,
                attempt + 1,
                type(exc).__name__,
            )
            return
        log.warning("Removing the VMS export of item %s failed (%s); trying again later", item.item_id, exc)
        body = encode_item(item.job_id, item.generation, item.item_id, cleanup=attempt + 1)
        send_message(services.queue, body, visibility_timeout=CLEANUP_RETRY_SECONDS)
        return
    with contextlib.suppress(LedgerRowChanged):  # someone else is writing it: the next delivery cleans up again
        services.ledger.save_item(replace(item, ticket=None))
