"""Where a job stands, read from its lock record and ledger: what the demo draws and operators read."""

from __future__ import annotations

from dataclasses import dataclass

from shared.agent.locks.records import LockRecord, LockRecords
from shared.agent.states import FINAL_ITEM_STATES, RecordState
from shared.agent.work.ledger import Ledger, Plan, WorkItem, generation_of


@dataclass(frozen=True)
class JobProgress:
    job_id: str
    job_type: str
    state: RecordState
    """The lock record's state (Queued, Processing, or how the job ended)."""
    items_total: int = 0
    items_done: int = 0
    files_delivered: int = 0
    bytes_delivered: int = 0
    bytes_in_flight: int = 0
    bytes_expected: int = 0
    """Sum of the sizes the VMS announced so far (grows as items learn their downloads' sizes)."""
    attempts: int = 0
    last_error: str = ""

    @property
    def bytes_done(self) -> int:
        return self.bytes_delivered + self.bytes_in_flight


def job_progress(record: LockRecord, ledger: Ledger) -> JobProgress:
    generation = generation_of(record.lock_token)
    plan = ledger.get_plan(record.job_id, generation)
    items = ledger.items(plan) if plan is not None else []
    return summarize(record, plan, items)


def summarize(record: LockRecord, plan: Plan | None, items: list[WorkItem]) -> JobProgress:
    base = JobProgress(record.job_id, record.job_type, record.state, last_error=record.last_error)
    if plan is None:
        return base
    errors = [item.last_error for item in items if item.last_error and item.state not in FINAL_ITEM_STATES]
    return JobProgress(
        record.job_id,
        record.job_type,
        record.state,
        items_total=plan.items_total,
        items_done=sum(1 for item in items if item.final),
        files_delivered=sum(item.files_delivered for item in items),
        bytes_delivered=sum(item.bytes_delivered for item in items),
        bytes_in_flight=sum(item.bytes_in_flight for item in items if not item.final),
        bytes_expected=sum(max(item.size_hint, item.bytes_delivered) for item in items),
        attempts=sum(item.attempts for item in items),
        last_error=errors[0] if errors else record.last_error,
    )


def all_jobs(records: LockRecords, ledger: Ledger) -> list[JobProgress]:
    """Every job the agent has a record of, newest first."""
    found = sorted(records.all(), key=lambda r: r.created, reverse=True)
    return [job_progress(record, ledger) for record in found]
