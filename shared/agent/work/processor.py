"""process_job: every message on the jobs queue, in one short run that is safe to repeat.

- A **job message** (from poll_jobs) becomes a plan: parameters are checked and the job canceled if it
  can never be done; otherwise its work items are written to the ledger and each is enqueued as an
  item message (see planner.py). Planning is idempotent: a job message delivered twice, or a fresh copy
  racing its original, plans under its own plan id and adopts whichever plan was stored first; items
  are never reset. A job message for a plan left Completing finishes the completion.
- An **item message** runs one work item (worker.py): a bounded piece of work, so no run is long.
- A message that can never be a job (not JSON, not one of the two shapes) goes straight to the poison
  queue on its first delivery, logged once with its message id and never its body.
- A message delivered again (its run died with its worker, or its invisibility lapsed) is replaced by a
  fresh copy and acknowledged: how often a worker was recycled under a running work item must not push
  it to the poison queue — the ledger bounds that. A job message's copy counts one more try (planning
  is short; one that keeps dying is a defect).
- **Poison for every message.** A run that fails before it claims its work (an error escaping the
  planner or the completion) never fails back to the host: its message is sent again with a backoff and
  one more `Tries`, and after MAX_DEQUEUE_COUNT tries it goes to the poison queue, logged once, and the
  job is released with the reason (at most RELEASE_LIMIT times: then it is canceled at its next lock).

Failure policy for planning: a permanent problem cancels the job with the reason; our own
configuration being wrong releases it, names the setting and pauses the agent; anything else is planned
again later, and the last attempt releases the job so no lock sits behind a poisoned message.
"""

from __future__ import annotations

import json
import logging

from shared.agent.errors import JobCanceled
from shared.agent.jobs.base import Planning
from shared.agent.locks.records import LockRecord
from shared.agent.states import ItemOutcome, MessageOutcome, PlanState, RecordState
from shared.agent.wiring.services import Services
from shared.agent.work.backoff import backoff
from shared.agent.work.completion import complete_job
from shared.agent.work.ending import cancel_job, lose_job, reason_to_end, release_job
from shared.agent.work.ledger import OfferedJob, Plan, WorkItem, new_plan_id
from shared.agent.work.messages import (
    ItemMessage,
    JobMessage,
    MalformedMessage,
    decode_message,
    encode_again,
    encode_item,
)
from shared.agent.work.planner import draft_plan
from shared.agent.work.worker import claim, run_claimed, run_item
from shared.failures import Disposition, disposition_of
from shared.redact import scrub
from shared.storage import send_message
from shared.telemetry import bind
from shared.telemetry.jobs import message_scope

log = logging.getLogger(__name__)

Outcome = MessageOutcome | ItemOutcome | RecordState
"""What a message's run did (for logs and tests; never stored)."""
PLANNING_OUTCOMES = {Disposition.LOST: MessageOutcome.LOST, Disposition.MISCONFIGURED: MessageOutcome.RELEASED}
"""What a failure while planning leads to, by the error's disposition; anything else is planned again later
(the last attempt releases the job). A cancel is the planner's own decision (JobCanceled, see _plan_and_start)."""


class ItemRunFailed(Exception):
    """The item a planning run ran itself failed to complete the job: retried as an item message's would be
    (the job message again, later), not counted as a failure to plan."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def planning_outcome(exc: BaseException) -> MessageOutcome:
    return PLANNING_OUTCOMES.get(disposition_of(exc), MessageOutcome.RETRY_LATER)


def process_message(body: bytes, *, dequeue_count: int, message_id: str, services: Services) -> Outcome:
    """Returns what happened (for logs and tests). Raises only when even sending a copy of the message
    failed (storage unreachable): then the host's own redelivery takes over."""
    try:
        message = decode_message(body)
    except MalformedMessage as exc:
        _poison_malformed(services, body, message_id, exc)
        return MessageOutcome.POISONED
    with message_scope(message, redelivered=dequeue_count > 1):  # telemetry: job dimensions, the job's trace
        if dequeue_count > 1:
            return refresh(message, message_id, services)
        try:
            if isinstance(message, ItemMessage):
                return run_item(message, message_id=message_id, services=services)
            return plan_job(message, message_id=message_id, services=services)
        except Exception as exc:  # noqa: BLE001 - retried through the queue with a count, then poisoned
            if disposition_of(exc) is Disposition.LOST:
                return _lock_gone(message, services, exc)
            return try_again(message, services, f"{type(exc).__name__}: {exc}", message_id=message_id)


def _lock_gone(message: JobMessage | ItemMessage, services: Services, exc: Exception) -> Outcome:
    """The Registry says the lock is no longer ours (e.g. a completion refused after the lock expired):
    trying the message again cannot help. The record ends Lost, if the failing call had not ended it."""
    record = services.records.get(message.job_id)
    if record is not None and not record.terminal and record.generation == (message.generation or record.generation):
        lose_job(services, record, str(exc))
    log.info("Message for job %s acknowledged: its lock is gone", message.job_id, extra={"job_id": message.job_id})
    return MessageOutcome.LOST


def refresh(message: JobMessage | ItemMessage, message_id: str, services: Services) -> Outcome:
    """Swap a redelivered message for a fresh copy that may take over the dead run's work.

    A job message's copy counts the death against planning only while the job has no plan. Once its plan
    is stored, the dead run was past planning (enqueueing the items, running a one-item job's item,
    completing): those steps resume from the ledger, the items carry attempt budgets of their own, and
    counting their deaths as planning failures released a job whose 480 items were already under way."""
    if isinstance(message, JobMessage):
        if message.generation and services.ledger.get_plan(message.job_id, message.generation) is not None:
            tries = message.tries
        elif (tries := message.tries + 1) >= services.max_tries:
            return poison(message, services, f"its runs died {tries} times while planning")
        send_message(services.queue, encode_again(message, tries=tries, previous=message_id))
    else:
        send_message(services.queue, encode_again(message, tries=message.tries, previous=message_id))
    log.info("Message %s was delivered again (its run died or stalled); replaced by a fresh copy", message_id)
    return MessageOutcome.REFRESHED


def try_again(message: JobMessage | ItemMessage, services: Services, error: str, *, message_id: str = "") -> Outcome:
    """A run failed (before claiming its work, or with an error its work did not handle): the message again,
    later, with one more try — or poison. The copy names this run's message as its `Previous`: this run has
    ended, so an item it left Running (its heartbeat still fresh) is taken over at once, not after
    STALE_AFTER_SECONDS."""
    tries = message.tries + 1
    reason = scrub(error)[:500]
    if tries >= services.max_tries:
        return poison(message, services, f"it failed {tries} times; last error: {reason}")
    delay = backoff(services.retry_delay, tries)
    log.warning("Message for job %s failed (try %d of %d), again in %.0f s: %s", message.job_id, tries,
                services.max_tries, delay, reason, extra={"job_id": message.job_id})  # fmt: skip
    again = encode_again(message, tries=tries, previous=message_id)
    send_message(services.queue, again, visibility_timeout=round(delay))
    return MessageOutcome.RETRY_LATER


def poison(message: JobMessage | ItemMessage, services: Services, why: str) -> Outcome:
    """To the poison queue (logged once), and the job released: nothing will carry it on."""
    what = f"item {message.item_id} of job" if isinstance(message, ItemMessage) else "job"
    log.error("Message for %s %s moved to the poison queue %s: %s", what, message.job_id,
              services.poison_queue.queue_name, why, extra={"job_id": message.job_id})  # fmt: skip
    send_message(services.poison_queue, encode_again(message, tries=message.tries + 1))
    record = services.records.get(message.job_id)
    if record is not None and not record.terminal and record.generation == (message.generation or record.generation):
        release_job(services, record, f"a message of the job went to the poison queue: {why}")
    return MessageOutcome.POISONED


def plan_job(message: JobMessage, *, message_id: str = "", services: Services, run_inline: bool = True) -> Outcome:
    """Plan the job of `message` (adopting a plan stored already), and start it. `run_inline`: a job of one
    work item runs it in this same run (see _plan_and_start); tests of the planning alone turn it off."""
    context = {"job_id": message.job_id}
    record = services.records.get(message.job_id)
    if record is None:
        log.warning("No lock record for job %s: not locked by this agent; ignoring", message.job_id, extra=context)
        return MessageOutcome.UNKNOWN
    generation = message.generation or record.generation
    if record.terminal or record.generation != generation:
        if record.generation == generation and not message.new:  # a planning run that ran the job's item died
            plan = services.ledger.get_plan(message.job_id, generation)  # after ending the record: finish up
            if plan is not None and plan.state == PlanState.COMPLETING:
                return complete_job(services, record, plan)
        log.info(
            "Job %s: this message's lock has ended (%s); acknowledged", message.job_id, record.state, extra=context
        )
        return MessageOutcome.DUPLICATE
    bind(generation=generation, job_type=record.job_type)  # telemetry: a job message names no type
    if (reason := reason_to_end(record, services)) is not None:  # the poller could not cancel it
        return cancel_job(services, record, reason)
    # The poller's own message, delivered for the first time, cannot find a plan: skip looking (if it was
    # delivered twice at once, the second planner's create is refused and it adopts the first one's plan).
    plan = None if message.new else services.ledger.get_plan(message.job_id, generation)
    if plan is not None:
        return _adopt(plan, record, services, message)
    try:
        return _plan_and_start(message, message_id if run_inline else "", record, services)
    except ItemRunFailed as failed:  # not a planning failure: the message is tried again (process_message)
        raise failed.cause from None
    except Exception as exc:  # noqa: BLE001 - handled as its error says; anything else is planned again later
        return _planning_failed(record, message, services, exc)


def _adopt(plan: Plan, record: LockRecord, services: Services, message: JobMessage) -> Outcome:
    """A plan exists for this lock: carry it on from wherever its last planner or finisher stopped."""
    if plan.state == PlanState.PLANNED:  # planned by a delivery that died before enqueueing everything
        return _start(plan, record, services)
    if plan.state == PlanState.COMPLETING:  # the item that finished last died before completing (or the sweep says so)
        return complete_job(services, record, plan)
    if plan.state == PlanState.UNDER_WAY and message.previous:  # a planning run that died running the item
        for item in services.ledger.items(plan):
            if not item.final and item.owner == message.previous:
                send_message(services.queue, encode_item(item.job_id, item.generation, item.item_id,
                                                         previous=item.owner))  # fmt: skip
                log.info("Job %s: item %s of the planning run that died is taken over", record.job_id, item.item_id)
                return MessageOutcome.RESUMED
    log.info("Job %s is already planned (%s); duplicate message acknowledged", record.job_id, plan.state)
    return MessageOutcome.DUPLICATE


def _planning_failed(record: LockRecord, message: JobMessage, services: Services, exc: Exception) -> Outcome:
    outcome = planning_outcome(exc)
    if outcome == MessageOutcome.LOST:
        lose_job(services, record, str(exc))
        return outcome
    if outcome == MessageOutcome.RELEASED:
        return release_job(services, record, f"configuration: {scrub(str(exc))[:500]}", agent_fault=True)
    reason = scrub(f"{type(exc).__name__}: {exc}")[:500]
    attempts = record.attempts + 1
    if attempts >= services.max_tries:
        return release_job(services, record, f"planning failed {attempts} times; last error: {reason}")
    delay = backoff(services.retry_delay, attempts)
    log.warning("Planning job %s failed (attempt %d), retrying in %.0f s: %s", record.job_id, attempts, delay, reason)
    services.records.transition(record.job_id, None, generation=record.generation, attempts=attempts,
                                last_error=reason)  # fmt: skip
    send_message(services.queue, encode_again(message, tries=message.tries), visibility_timeout=round(delay))
    return MessageOutcome.RETRY_LATER


def _offered(message: JobMessage, record: LockRecord, services: Services) -> OfferedJob | None:
    """What the Registry offered: kept in the lock record when small, else in a row of its own."""
    if record.parameters:
        return OfferedJob(record.job_id, record.generation, record.job_type, json.loads(record.parameters))
    offered = services.ledger.get_job(record.job_id, record.generation)
    if offered is None and message.parameters is not None:  # a message of an earlier version
        offered = OfferedJob(record.job_id, record.generation, message.job_type, message.parameters)
    return offered


def _plan_and_start(message: JobMessage, message_id: str, record: LockRecord, services: Services) -> Outcome:
    """Plan the job and start it, or end it at once ("Canceled"; "Lost" when the cancel found the lock gone).

    A job of one work item (a thumbnail of a few cameras, a discovery, a short clip) is run here, in this
    run: its item is written already claimed by this message, in the plan's own transaction, and the plan
    is Running from the start. Otherwise every item is enqueued, each to its own run."""
    offered = _offered(message, record, services)
    if offered is None:
        raise LookupError(f"job {record.job_id}: what the Registry offered was not stored with its lock")
    plan_id = new_plan_id()
    try:
        draft = draft_plan(offered, plan_id, Planning(services.vms, services.max_segment, services.known_cameras))
    except JobCanceled as exc:
        return cancel_job(services, record, str(exc))
    inline = len(draft.items) == 1 and bool(message_id)  # no message id: the caller plans only
    items = [claim(draft.items[0], message_id)] if inline else draft.items
    plan = Plan(
        record.job_id,
        record.generation,
        offered.job_type,
        plan_id=plan_id,
        state=PlanState.UNDER_WAY if inline else PlanState.PLANNED,
        items_total=len(items),
        items_remaining=len(items),
    )
    stored, created, items = services.ledger.create_plan_with_items(plan, items, draft.missing)
    if not created:  # another delivery of this lock finished planning first: its plan stands
        log.info("Job %s: another planner stored its plan first; adopting it", record.job_id)
        return _adopt(stored, record, services, message)
    log.info(
        "Job %s planned: %d work item(s)%s",
        record.job_id,
        stored.items_total,
        f", {stored.gaps_total} gap(s) known" if stored.gaps_total else "",
        extra={"job_id": record.job_id, "job_type": record.job_type},
    )
    if inline and items and items[0].etag:
        processing = _processing(record, services)
        if processing is None:
            log.info("Job %s: its lock ended while it was planned; not run", record.job_id)
            return MessageOutcome.DUPLICATE
        try:
            return run_claimed(services, processing, items[0], message_id, plan=stored)
        except Exception as exc:  # the item's own failures are handled inside: this is its completion
            raise ItemRunFailed(exc) from exc
    return _start(stored, record, services, items)


def _processing(record: LockRecord, services: Services) -> LockRecord | None:
    """The record Processing (what an operator sees while the job's items run), written on the ETag held;
    None when the record has ended or belongs to a newer lock."""
    if record.state == RecordState.PROCESSING:
        return record
    return services.records.transition(
        record.job_id, RecordState.PROCESSING, generation=record.generation, known=record, last_error=""
    )


def _start(plan: Plan, record: LockRecord, services: Services, items: list[WorkItem] | None = None) -> Outcome:
    """Enqueue every unfinished item, then mark the plan Running (a redelivery enqueues again: harmless)."""
    record = _processing(record, services) or record
    if plan.items_total == 0:
        return complete_job(services, record, services.ledger.mark_completing(plan))
    pending = items if items is not None else services.ledger.items(plan)
    for item in pending:
        if not item.final:
            send_message(services.queue, encode_item(item.job_id, item.generation, item.item_id))
    services.ledger.mark_plan_running(plan)
    return MessageOutcome.PLANNED


def _poison_malformed(services: Services, body: bytes, message_id: str, exc: MalformedMessage) -> None:
    """Straight to <queue>-poison, unchanged: retrying a message that can never be a job helps nobody."""
    log.error(
        "Message %s can never be a job (%s); moved to the poison queue %s",
        message_id,
        exc,
        services.poison_queue.queue_name,
    )
    send_message(services.poison_queue, body)
