"""One lock record per job in Azure Table Storage: how the three functions coordinate.

The functions may run on different instances and share no memory; the record is the single source of
truth for a locked job and what an operator reads to see what the agent is doing. States only move
forward, and every change is an ETag compare-and-swap:

    Queued → Processing → Completed | PartiallyCompleted | Failed | Canceled | Released | Lost | Abandoned

The record says where the job stands as a whole; its plan and work items (what is done, file by file)
are in the same table, in the job's own partition (see ledger.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.telemetry import metrics

log = logging.getLogger(__name__)

PARTITION = "job"
QUEUED, PROCESSING = "Queued", "Processing"
TERMINAL_STATES = frozenset({"Completed", "PartiallyCompleted", "Failed", "Canceled", "Released", "Lost", "Abandoned"})
_ORDER = {QUEUED: 0, PROCESSING: 1, **dict.fromkeys(TERMINAL_STATES, 2)}


class StaleRecord(Exception):
    """The record changed since it was read (another function got there first)."""


class IllegalTransition(Exception):
    """A state change that would move a record backwards."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LockRecord:
    job_id: str
    job_type: str
    lock_token: str = field(repr=False)
    lock_expires: datetime
    state: str = QUEUED
    attempts: int = 0
    last_error: str = ""
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    finished: datetime | None = None
    etag: str | None = field(default=None, compare=False)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def moved_to(self, state: str, **changes: Any) -> LockRecord:
        if state not in _ORDER:
            raise IllegalTransition(f"job {self.job_id}: {state!r} is not a state")
        if _ORDER[state] < _ORDER[self.state] or (self.terminal and state != self.state):
            raise IllegalTransition(f"job {self.job_id}: {self.state} → {state} is not allowed")
        now = utc_now()
        finished = self.finished if self.terminal else (now if state in TERMINAL_STATES else None)
        return replace(self, state=state, updated=now, finished=finished, **changes)


class LockRecords:
    def __init__(
        self, table: TableClient, clock: Callable[[], datetime] = utc_now, *, create_table: bool = True
    ) -> None:
        """`create_table=False` (the ops tool): never create the table, so reading needs only a reader's role."""
        self._table = table
        self._clock = clock
        self._table_ready = not create_table

    def ensure_table(self) -> None:
        if not self._table_ready:
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table()
            self._table_ready = True

    def get(self, job_id: str) -> LockRecord | None:
        self.ensure_table()
        try:
            return _from_entity(self._table.get_entity(PARTITION, job_id))
        except ResourceNotFoundError:
            return None

    def create(self, record: LockRecord) -> LockRecord:
        """Record a new lock. A job locked again later (after a release, or after our earlier lock
        expired) starts a new generation: the old record is replaced, so a run still holding the old
        lock fails its next compare-and-swap (and its next Registry call answers 409)."""
        self.ensure_table()
        try:
            metadata = self._table.create_entity(_to_entity(record))
            return replace(record, etag=metadata["etag"])
        except ResourceExistsError:
            existing = self.get(record.job_id)
            if existing is None:
                return self.create(record)  # deleted meanwhile
            if existing.lock_token == record.lock_token:
                return existing  # the same lock recorded twice (a retried poll)
            return self._write(record, existing.etag)

    def save(self, record: LockRecord) -> LockRecord:
        """Compare-and-swap against the ETag the record was read with."""
        return self._write(record, record.etag)

    def transition(self, job_id: str, state: str | None, **changes: Any) -> LockRecord | None:
        """Read-modify-write with retries on a concurrent change (`state` None keeps the current state);
        None when the record is gone or already terminal (a transition never overrides a final outcome)."""
        for _ in range(5):
            current = self.get(job_id)
            if current is None or current.terminal:
                return None
            try:
                return self.save(current.moved_to(state or current.state, **changes))
            except StaleRecord:
                continue
        raise StaleRecord(f"job {job_id}: the record kept changing")

    def active(self) -> Iterator[LockRecord]:
        self.ensure_table()
        query = f"PartitionKey eq '{PARTITION}' and (State eq '{QUEUED}' or State eq '{PROCESSING}')"
        for entity in self._table.query_entities(query):
            yield _from_entity(entity)

    def all(self) -> Iterator[LockRecord]:
        self.ensure_table()
        for entity in self._table.query_entities(f"PartitionKey eq '{PARTITION}'"):
            yield _from_entity(entity)

    def count_active(self) -> int:
        return sum(1 for _ in self.active())

    def _write(self, record: LockRecord, etag: str | None) -> LockRecord:
        try:
            metadata = self._table.update_entity(
                _to_entity(record), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise StaleRecord(f"job {record.job_id}: the record changed meanwhile") from None
        return replace(record, etag=metadata["etag"])


def _to_entity(record: LockRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": record.job_id,
        "JobType": record.job_type,
        "LockToken": record.lock_token,
        "LockExpiresUtc": record.lock_expires,
        "State": record.state,
        "Attempts": record.attempts,
        "LastError": record.last_error[:1000],
        "CreatedUtc": record.created,
        "UpdatedUtc": record.updated,
    }
    if record.finished is not None:
        entity["FinishedUtc"] = record.finished
    return entity


def _from_entity(entity: TableEntity) -> LockRecord:
    return LockRecord(
        job_id=entity["RowKey"],
        job_type=entity.get("JobType", ""),
        lock_token=entity.get("LockToken", ""),
        lock_expires=entity["LockExpiresUtc"],
        state=entity.get("State", QUEUED),
        attempts=int(entity.get("Attempts", 0)),
        last_error=entity.get("LastError", ""),
        created=entity.get("CreatedUtc") or utc_now(),
        updated=entity.get("UpdatedUtc") or utc_now(),
        finished=entity.get("FinishedUtc"),
        etag=entity.metadata["etag"],
    )


def log_job_end(record: LockRecord, state: str, detail: str) -> None:
    """The one line per job outcome that operators (and the deployment's alerts) look for."""
    level = logging.INFO if state in ("Completed", "PartiallyCompleted") else logging.WARNING
    log.log(
        level,
        "Job ended: state=%s job_id=%s type=%s%s",
        state,
        record.job_id,
        record.job_type,
        f" detail={detail[:300]}" if detail else "",
        extra={"job_id": record.job_id, "job_type": record.job_type, "job_event": state},
    )
    metrics.job_ended(state, record.job_type)  # telemetry: clearance.jobs.ended
