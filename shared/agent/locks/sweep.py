"""The sweep (run by renew_locks): nothing is left without a way forward, and nothing is kept for ever.

Normally every unfinished item has a message on the queue and every plan a run that carries it on: a
worker that dies has its message delivered again. The sweep is the net under that: for each job in
flight it puts back on the queue

- an item no live run owns: Running with a heartbeat older than `sweep_after`, or Pending past the
  time its message was due by more than `sweep_after` (a fresh item message, naming the dead owner so
  that it takes over at once);
- a plan stuck Planned (its items were never all enqueued) or Completing (the job was never completed)
  with no change for `sweep_after` (a job message: the planner adopts the plan and carries it on);
- a lock still Queued with no plan `UNPLANNED_AFTER` after it was taken (a job message: the poller's own
  was never sent, its host killed between the lock record and the enqueue). Without this the lock would
  be renewed, with no work, until MAX_JOB_AGE_MINUTES. A job message that was merely slow to arrive is
  then planned twice, which planning tolerates (the second adopts the first's plan).

Whatever it re-sends it marks (the item's due time, the plan's update time), so the next sweep leaves it
alone for another `sweep_after`. A duplicate message is harmless: ownership is decided in storage.

Retention, at most once an hour across all instances, deletes the records, plans and items of jobs that
finished more than `RETENTION_DAYS` ago (a bounded number per run).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.agent.locks.records import LockRecord, RecordChanged, utc_now
from shared.agent.states import ItemState, PlanState, RecordState
from shared.agent.wiring.services import Services
from shared.agent.work.ledger import LedgerRowChanged, WorkItem
from shared.agent.work.messages import encode_item, encode_job
from shared.storage import send_message

log = logging.getLogger(__name__)

UNPLANNED_AFTER = timedelta(seconds=90)
"""A lock Queued this long without a plan gets a job message (again, at most this often)."""
RETENTION_EVERY = timedelta(hours=1)
RETENTION_BATCH = 200
MAINTENANCE_PARTITION, RETENTION_ROW = "agent", "retention"


@dataclass
class SweepResult:
    items: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)


def sweep(services: Services, records: list[LockRecord], now: datetime | None = None) -> SweepResult:
    now = now or utc_now()
    after = timedelta(seconds=services.sweep_after)
    result = SweepResult()
    for record in records:
        try:
            _sweep_job(services, record, now, after, result)
        except Exception as exc:  # noqa: BLE001 - one job's trouble never stops the sweep of the others
            log.warning("sweep: job %s skipped (%s)", record.job_id, type(exc).__name__)
    if result.items or result.plans:
        log.warning("sweep: %d item(s) and %d plan(s) put back on the queue (no live run carried them on)",
                    len(result.items), len(result.plans))  # fmt: skip
    return result


def _sweep_job(services: Services, record: LockRecord, now: datetime, after: timedelta, result: SweepResult) -> None:
    plan = services.ledger.get_plan(record.job_id, record.generation)
    if plan is None:
        if record.state == RecordState.QUEUED and now - (record.swept or record.created) > UNPLANNED_AFTER:
            send_message(services.queue, encode_job(record.job_id, record.generation))
            with contextlib.suppress(RecordChanged):  # its sweep time: the next sweep waits again
                services.records.transition(record.job_id, None, generation=record.generation, known=record, swept=now)
            result.plans.append(f"{record.job_id} (Queued, never planned)")
        return
    if plan.state in (PlanState.PLANNED, PlanState.COMPLETING) and now - plan.updated > after:
        send_message(services.queue, encode_job(record.job_id, record.generation))
        with contextlib.suppress(LedgerRowChanged):
            services.ledger.save_plan(plan)  # its update time: the next sweep waits again
        result.plans.append(f"{record.job_id} ({plan.state})")
        return
    if plan.state != PlanState.UNDER_WAY or now - plan.updated <= after:
        return  # an item finished lately: the job is moving
    for item in services.ledger.items(plan):
        if not item.final and _abandoned(item, now, after):
            send_message(services.queue, encode_item(item.job_id, item.generation, item.item_id, previous=item.owner))
            with contextlib.suppress(LedgerRowChanged):
                services.ledger.save_item(replace(item, due=now))
            result.items.append(f"{record.job_id}/{item.item_id}")


def _abandoned(item: WorkItem, now: datetime, after: timedelta) -> bool:
    if item.state == ItemState.RUNNING:
        return now - max(item.heartbeat or item.updated, item.due or item.updated) > after
    return now - (item.due or item.updated) > after


def retain(services: Services, now: datetime | None = None) -> int:
    """Delete finished jobs older than the retention period; at most hourly, by one instance."""
    now = now or utc_now()
    if not _claim_retention_run(services, now):
        return 0
    cutoff = now - services.retention
    removed = 0
    for record in services.records.finished_before(cutoff, RETENTION_BATCH):
        services.ledger.delete_partition(record.job_id)
        services.records.delete(record)
        removed += 1
    if removed:
        log.info("retention: removed %d job(s) that finished before %s", removed, cutoff.isoformat(timespec="seconds"))
    return removed


def _claim_retention_run(services: Services, now: datetime) -> bool:
    table = services.ledger.table
    entity = {"PartitionKey": MAINTENANCE_PARTITION, "RowKey": RETENTION_ROW, "LastRunUtc": now}
    try:
        row = table.get_entity(MAINTENANCE_PARTITION, RETENTION_ROW)
    except ResourceNotFoundError:
        try:
            table.create_entity(entity)
            return True
        except ResourceExistsError:
            return False
    if now - row["LastRunUtc"] < RETENTION_EVERY:
        return False
    try:
        table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=row.metadata["etag"], match_condition=MatchConditions.IfNotModified
        )
    except (ResourceModifiedError, ResourceNotFoundError):
        return False  # another instance claimed this run
    return True
