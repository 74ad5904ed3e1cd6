"""process_job: every message on the jobs queue, in one short run that is safe to repeat.

- A **job message** (from poll_jobs) becomes a plan: parameters are checked and the job canceled if it
  can never be done; otherwise its work items are written to the ledger and each is enqueued as an
  item message (see planner.py). A redelivered job message finds the plan and only enqueues again
  whatever had not been enqueued yet.
- An **item message** runs one work item (worker.py): a bounded piece of work, so no run is long.
- A message that can never be a job (not JSON, not one of the two shapes) goes straight to the poison
  queue on its first delivery, logged once with its message id and never its body.
- A message delivered again (its run died with its worker, or its invisibility lapsed) is replaced by a
  fresh copy and acknowledged: how often a worker was recycled under a message must not push it to the
  poison queue. What bounds the work is the ledger's attempt count, not the message's dequeue count.

Failure policy for planning: a permanent problem cancels the job with the reason; our own
configuration being wrong releases it and names the setting; anything else is retried by the host, and
the final delivery releases the job so no lock sits behind a poisoned message.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from shared.agent.completion import complete_job
from shared.agent.errors import JobCanceled
from shared.agent.ledger import PLANNED, RUNNING_PLAN, Plan, WorkItem, generation_of
from shared.agent.messages import ItemMessage, JobMessage, MalformedMessage, decode_message, encode_item
from shared.agent.planner import draft_plan
from shared.agent.records import PROCESSING, LockRecord, log_job_end
from shared.agent.services import Services
from shared.agent.worker import run_item
from shared.failures import Disposition, disposition_of
from shared.redact import scrub
from shared.registry.errors import RegistryError
from shared.storage import send_message
from shared.telemetry import bind
from shared.telemetry.jobs import message_scope

log = logging.getLogger(__name__)

PLANNING_OUTCOMES = {Disposition.LOST: "Lost", Disposition.MISCONFIGURED: "Released"}
"""What a failure while planning leads to, by the error's disposition; anything else is planned again later
(the last attempt releases the job). A cancel is the planner's own decision (JobCanceled, see _plan_and_start)."""


def planning_outcome(exc: BaseException) -> str:
    return PLANNING_OUTCOMES.get(disposition_of(exc), "RetryLater")


def process_message(body: bytes, *, dequeue_count: int, message_id: str, services: Services) -> str:
    """Returns what happened (for logs and tests)."""
    try:
        message = decode_message(body)
    except MalformedMessage as exc:
        _poison(services, body, message_id, exc)
        return "Poisoned"
    with message_scope(message, redelivered=dequeue_count > 1):  # telemetry: job dimensions, the job's trace
        if dequeue_count > 1:
            return refresh(message, body, message_id, services)
        if isinstance(message, ItemMessage):
            return run_item(message, message_id=message_id, services=services)
        return plan_job(message, body, services=services)


def refresh(message: JobMessage | ItemMessage, body: bytes, message_id: str, services: Services) -> str:
    """Swap a redelivered message for a fresh copy that may take over the dead run's work."""
    if isinstance(message, ItemMessage):
        body = encode_item(message.job_id, message.generation, message.item_id, previous=message_id)
    send_message(services.queue, body)
    log.info("Message %s was delivered again (its run died or stalled); replaced by a fresh copy", message_id)
    return "Refreshed"


def plan_job(message: JobMessage, body: bytes, *, services: Services) -> str:
    context = {"job_id": message.job_id, "job_type": message.job_type}
    record = services.records.get(message.job_id)
    if record is None:
        log.warning("No lock record for job %s: not locked by this agent; ignoring", message.job_id, extra=context)
        return "Unknown"
    if record.terminal:
        log.info("Job %s already %s; duplicate message acknowledged", message.job_id, record.state, extra=context)
        return "Duplicate"
    generation = generation_of(record.lock_token)
    bind(generation=generation)  # telemetry
    plan = services.ledger.get_plan(message.job_id, generation)
    if plan is not None and plan.state != PLANNED:
        log.info("Job %s is already planned and running; duplicate message acknowledged", message.job_id)
        return "Duplicate"
    try:
        if plan is not None:  # planned by an earlier delivery that died before enqueueing everything
            return _start(plan, record, services)
        return _plan_and_start(message, record, generation, services)
    except Exception as exc:  # noqa: BLE001 - handled as its error says; anything else is planned again later
        return _planning_failed(record, body, services, exc)


def _planning_failed(record: LockRecord, body: bytes, services: Services, exc: Exception) -> str:
    outcome = planning_outcome(exc)
    if outcome == "Lost":
        services.records.transition(record.job_id, "Lost", last_error=str(exc)[:500])
        log_job_end(record, "Lost", str(exc))
        return outcome
    if outcome == "Released":
        return _release(record, services, f"configuration: {scrub(str(exc))[:500]}")
    reason = scrub(f"{type(exc).__name__}: {exc}")[:500]
    attempts = record.attempts + 1
    if attempts >= services.max_attempts:
        return _release(record, services, f"planning failed {attempts} times; last error: {reason}")
    delay = services.retry_delay * 2 ** (attempts - 1)
    log.warning("Planning job %s failed (attempt %d), retrying in %.0f s: %s", record.job_id, attempts, delay, reason)
    services.records.transition(record.job_id, None, attempts=attempts, last_error=reason)
    send_message(services.queue, body, visibility_timeout=round(delay))
    return "RetryLater"


def _plan_and_start(message: JobMessage, record: LockRecord, generation: str, services: Services) -> str:
    """Plan the job and enqueue its items, or end it at once ("Canceled"; "Lost" when the cancel found the
    lock gone)."""
    try:
        draft = draft_plan(message, generation, services)
    except JobCanceled as exc:
        return _cancel(record, services, str(exc))
    plan = Plan(
        record.job_id,
        generation,
        message.job_type,
        items_total=len(draft.items),
        items_remaining=len(draft.items),
        missing=tuple(draft.missing),
    )
    stored, created = services.ledger.create_plan(plan, draft.items)
    if not created:  # another delivery finished planning first
        return _start(stored, record, services) if stored.state == PLANNED else "Duplicate"
    log.info(
        "Job %s planned: %d work item(s)%s",
        record.job_id,
        stored.items_total,
        f", {len(stored.missing)} gap(s) known" if stored.missing else "",
        extra={"job_id": record.job_id, "job_type": record.job_type},
    )
    return _start(stored, record, services, draft.items)


def _start(plan: Plan, record: LockRecord, services: Services, items: list[WorkItem] | None = None) -> str:
    """Enqueue every unfinished item, then mark the plan Running (a redelivery enqueues again: harmless)."""
    if record.state != PROCESSING:
        services.records.transition(record.job_id, PROCESSING, last_error="")
    # the items of a plan just written (every one unfinished), or of one a crash left unstarted
    pending = items if items is not None else services.ledger.items(plan.job_id, plan.generation)
    if plan.items_total == 0:
        running = services.ledger.save_plan(replace(plan, state="Completing"))
        return complete_job(services, record, running)
    for item in pending:
        if not item.final:
            send_message(services.queue, encode_item(item.job_id, item.generation, item.item_id))
    services.ledger.save_plan(replace(plan, state=RUNNING_PLAN))
    return "Planned"


def _cancel(record: LockRecord, services: Services, reason: str) -> str:
    log.warning("Canceling job %s: %s", record.job_id, reason)
    try:
        services.registry.cancel(record.job_id, record.lock_token, reason[:1000])
    except Exception as exc:
        if disposition_of(exc) is not Disposition.LOST:
            raise
        services.records.transition(record.job_id, "Lost", last_error=str(exc)[:500])
        log_job_end(record, "Lost", str(exc))
        return "Lost"
    services.records.transition(record.job_id, "Canceled", last_error=reason[:1000])
    log_job_end(record, "Canceled", reason)
    return "Canceled"


def _release(record: LockRecord, services: Services, reason: str) -> str:
    log.error("Releasing job %s so it can be picked up again: %s", record.job_id, reason)
    try:
        services.registry.release(record.job_id, record.lock_token)
    except RegistryError as exc:
        log.error("Releasing job %s failed too (%s); its lock will expire on its own", record.job_id, exc)
    if services.records.transition(record.job_id, "Released", last_error=reason) is not None:
        log_job_end(record, "Released", reason)
    return "Released"


def _poison(services: Services, body: bytes, message_id: str, exc: MalformedMessage) -> None:
    """Straight to <queue>-poison, unchanged: retrying a message that can never be a job helps nobody."""
    log.error(
        "Message %s can never be a job (%s); moved to the poison queue %s",
        message_id,
        exc,
        services.poison_queue.queue_name,
    )
    send_message(services.poison_queue, body)
