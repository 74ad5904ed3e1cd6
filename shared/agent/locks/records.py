"""One lock record per job in Azure Table Storage: how the three functions coordinate.

The functions may run on different instances and share no memory; the record is the single source of
truth for a locked job and what an operator reads to see what the agent is doing. States only move
forward, and every change is an ETag compare-and-swap:

    Queued → Processing → Completed | PartiallyCompleted | Failed | Canceled | Refused | Released | Lost | Abandoned

**Fencing.** A record belongs to one lock: its `Generation` (a hash of the lock token). When the job is
locked again, the new lock replaces the record. Every change a run makes names the generation it works
for (`transition(..., generation=…)`), and a record of another generation is never touched: a run of an
old lock changes nothing that belongs to a newer one, and logs no `Job ended` line for it.

**History across locks.** A new lock of the same job carries forward when the job was first locked,
how many times it was locked, and how many times this agent released it for a reason of the job's own:
the poller ends a job that keeps coming back (`RELEASE_LIMIT`), and the job's age counts its whole life.

**Active index.** Every non-final record has a small row in partition `active`, so polls and renewals
read only the jobs in flight, however long the history (finished records stay until retention). The
agent's pause row lives there too (pause.py), so one query serves a poll.

**The offered job.** A job whose parameters are small (most: a few cameras and a window) keeps them in its
record (`Parameters`), read with it by the planner; a larger one has them in its own row (ledger.put_job).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.agent.locks.pause import is_pause_row
from shared.agent.states import FINAL_RECORD_STATES, RECORD_TRANSITIONS, RecordState
from shared.agent.work.ledger import generation_of, read_int
from shared.secrets.sealing import SealedValueUnreadable, Sealer, is_sealed
from shared.telemetry import metrics

log = logging.getLogger(__name__)

PARTITION = "job"
ACTIVE_PARTITION = "active"
MARKER_PARTITION, INDEX_MARKER = "agent", "active-index"
FINAL_AT_REGISTRY = frozenset(
    {RecordState.COMPLETED, RecordState.PARTIALLY_COMPLETED, RecordState.FAILED, RecordState.CANCELED,
     RecordState.REFUSED}
)  # fmt: skip
"""Record states after which the Registry never offers the job again (no newer lock can exist)."""
INLINE_PARAMETERS = 8_000
"""Characters of job parameters (JSON) kept in the lock record itself; larger ones get a row of their own."""
INDEX_GRACE = timedelta(minutes=2)
"""An index row without a live record is removed only once it is this old (the poller writes the index
row just before the record)."""


class RecordChanged(Exception):
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
    """In this host's clock: the Registry's stated remaining time added to when its answer arrived."""
    state: RecordState = RecordState.QUEUED
    attempts: int = 0
    last_error: str = ""
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    finished: datetime | None = None
    first_locked: datetime | None = None
    """When this agent first locked the job (any lock): the job's age counts from here."""
    locks: int = 1
    """How many times this agent locked the job (this lock included)."""
    releases: int = 0
    """How many times this agent released the job for a reason of the job's own (not a misconfiguration)."""
    swept: datetime | None = None
    """When the sweep last sent a job message for this lock, which it found Queued with no plan."""
    parameters: str = field(default="", repr=False, compare=False)
    """The job's parameters as the Registry offered them (JSON), when small enough to keep here."""
    stored_generation: str = field(default="", repr=False, compare=False)
    """The generation as stored (readable without the token, which is sealed: shared/secrets/)."""
    etag: str | None = field(default=None, compare=False)

    @property
    def terminal(self) -> bool:
        return self.state in FINAL_RECORD_STATES

    @property
    def generation(self) -> str:
        return self.stored_generation or generation_of(self.lock_token)

    @property
    def born(self) -> datetime:
        return self.first_locked or self.created

    def moved_to(self, state: RecordState, **changes: Any) -> LockRecord:
        if state not in RECORD_TRANSITIONS:
            raise IllegalTransition(f"job {self.job_id}: {state!r} is not a state")
        if state not in RECORD_TRANSITIONS[self.state]:
            raise IllegalTransition(f"job {self.job_id}: {self.state} → {state} is not allowed")
        now = utc_now()
        finished = self.finished if self.terminal else (now if state in FINAL_RECORD_STATES else None)
        return replace(self, state=state, updated=now, finished=finished, **changes)


class LockRecords:
    def __init__(
        self,
        table: TableClient,
        clock: Callable[[], datetime] = utc_now,
        *,
        sealer: Sealer | None = None,
        create_table: bool = True,
    ) -> None:
        """`sealer` seals the lock token (shared/secrets/lock_tokens.py). Without it (an operator without the
        connection file) a sealed token reads as "": such records are for reading, never for writing back.
        `create_table=False` (the ops tool): never create the table, so reading needs only a reader's role."""
        self._table = table
        self._clock = clock
        self._sealer = sealer
        self._table_ready = not create_table
        self._indexed = False

    def ensure_table(self) -> None:
        if not self._table_ready:
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table()
            self._table_ready = True

    def get(self, job_id: str) -> LockRecord | None:
        self.ensure_table()
        try:
            return _from_entity(self._table.get_entity(PARTITION, job_id), self._sealer)
        except ResourceNotFoundError:
            return None

    def create(self, record: LockRecord) -> LockRecord:
        """Record a new lock. A job locked again later (after a release, or after our earlier lock
        expired) starts a new generation: the old record is replaced — keeping the job's history — so a
        run still holding the old lock fails its next compare-and-swap (and its next Registry call 409)."""
        self.ensure_table()
        self._table.upsert_entity(
            {"PartitionKey": ACTIVE_PARTITION, "RowKey": record.job_id, "Generation": record.generation,
             "CreatedUtc": self._clock()},
            mode=UpdateMode.REPLACE,
        )  # fmt: skip
        record = replace(record, first_locked=record.first_locked or record.created)
        try:
            metadata = self._table.create_entity(_to_entity(record, self._sealer))
            return replace(record, etag=metadata["etag"])
        except ResourceExistsError:
            pass
        for _ in range(5):
            existing = self.get(record.job_id)
            if existing is None:
                return self.create(record)  # deleted meanwhile
            if existing.generation == record.generation:
                return existing  # the same lock recorded twice (a retried poll)
            carried = replace(
                record,
                first_locked=existing.born,
                locks=existing.locks + 1,
                releases=existing.releases,
                last_error=f"previous lock ended {existing.state}: {existing.last_error}"[:1000],
            )
            try:
                return self._write(carried, existing.etag)
            except RecordChanged:
                # the old lock's run ended its record at this moment (e.g. Lost, its lock having expired):
                # carry the history it just wrote; giving up would release the lock we just took
                continue
        raise RecordChanged(f"job {record.job_id}: the previous lock's record kept changing")

    def save(self, record: LockRecord) -> LockRecord:
        """Compare-and-swap against the ETag the record was read with."""
        return self._write(record, record.etag)

    def transition(
        self,
        job_id: str,
        state: RecordState | None,
        *,
        generation: str,
        released: bool = False,
        known: LockRecord | None = None,
        **changes: Any,
    ) -> LockRecord | None:
        """Read-modify-write of the record of lock `generation`, retried on a concurrent change (`state`
        None keeps the current state; `released` counts one more release for a reason of the job's own).
        None when the record is gone, already terminal (a transition never overrides a final outcome) or
        belongs to another lock (fencing). `known`: the record as read moments ago, with its ETag — tried
        first instead of reading it again (a conflict falls back to reading)."""
        for attempt in range(5):
            current = known if attempt == 0 and known is not None and known.etag else self.get(job_id)
            if current is None or current.terminal or current.generation != generation:
                return None
            if released:
                changes["releases"] = current.releases + 1
            try:
                return self.save(current.moved_to(state or current.state, **changes))
            except RecordChanged:
                continue
        raise RecordChanged(f"job {job_id}: the record kept changing")

    def active(self) -> Iterator[LockRecord]:
        """The records in flight, from the active index (never a scan of the history). Index rows whose
        record has ended (a crash between the record's write and the row's removal) are removed here."""
        now = self._clock()
        for row in self.active_index():
            if is_pause_row(row):
                continue
            record = self.get(row["RowKey"])
            if record is not None and not record.terminal and record.generation == row.get("Generation"):
                yield record
            elif now - (row.get("CreatedUtc") or now) > INDEX_GRACE or (
                record is not None and record.terminal and record.generation == row.get("Generation")
            ):
                self._unindex(row["RowKey"], row.metadata["etag"])

    def _index_earlier_records(self) -> None:
        """Records of jobs in flight written before the active index existed (by an earlier version of the
        agent) are indexed, so an upgrade never strands a job: once per process, and never again once a
        marker row says it was done for this table."""
        if self._indexed:
            return
        try:
            self._table.get_entity(MARKER_PARTITION, INDEX_MARKER)
        except ResourceNotFoundError:
            in_flight = f"State eq '{RecordState.QUEUED}' or State eq '{RecordState.PROCESSING}'"
            query = f"PartitionKey eq '{PARTITION}' and ({in_flight})"
            found = 0
            for entity in self._table.query_entities(query):
                found += 1
                record = _from_entity(entity, self._sealer)
                self._table.upsert_entity(
                    {"PartitionKey": ACTIVE_PARTITION, "RowKey": record.job_id, "Generation": record.generation,
                     "CreatedUtc": self._clock()},
                    mode=UpdateMode.REPLACE,
                )  # fmt: skip
            if found:  # none found: nothing to remember (an idle poll writes nothing)
                self._table.upsert_entity({"PartitionKey": MARKER_PARTITION, "RowKey": INDEX_MARKER})
        self._indexed = True

    def active_index(self) -> list[TableEntity]:
        """Every row of the active partition: one per job in flight, and the agent's pause row if any."""
        self.ensure_table()
        self._index_earlier_records()
        return list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": ACTIVE_PARTITION}))

    def count_active(self) -> int:
        return count_in_flight(self.active_index())

    def all(self) -> Iterator[LockRecord]:
        self.ensure_table()
        for entity in self._table.query_entities(f"PartitionKey eq '{PARTITION}'"):
            yield _from_entity(entity, self._sealer)

    def finished_before(self, cutoff: datetime, limit: int) -> list[LockRecord]:
        """Records that ended before `cutoff` (for retention); a scan of the history, so run rarely."""
        self.ensure_table()
        query = "PartitionKey eq @pk and FinishedUtc lt @cutoff"
        found = []
        for entity in self._table.query_entities(query, parameters={"pk": PARTITION, "cutoff": cutoff}):
            found.append(_from_entity(entity, self._sealer))
            if len(found) >= limit:
                break
        return found

    def delete(self, record: LockRecord) -> None:
        with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
            self._table.delete_entity(
                PARTITION, record.job_id, etag=record.etag, match_condition=MatchConditions.IfNotModified
            )

    def _write(self, record: LockRecord, etag: str | None) -> LockRecord:
        entity = _to_entity(record, self._sealer)
        try:
            metadata = self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            stored = self._stored(record.job_id)
            if stored is None or stored.get("WriteId") != entity["WriteId"]:
                raise RecordChanged(f"job {record.job_id}: the record changed meanwhile") from None
            metadata = dict(stored.metadata)  # applied; the SDK's retry met our own new ETag
        if record.state in FINAL_AT_REGISTRY:  # the job can never be locked again: the row can only be ours
            self._unindex(record.job_id, None)
        elif record.terminal:  # released, lost, abandoned: the job may be locked again meanwhile
            self._unindex(record.job_id, None, generation=record.generation)
        return replace(record, etag=metadata["etag"])

    def _stored(self, job_id: str) -> TableEntity | None:
        try:
            return self._table.get_entity(PARTITION, job_id)
        except ResourceNotFoundError:
            return None

    def _unindex(self, job_id: str, etag: str | None, *, generation: str | None = None) -> None:
        """Remove the job's active-index row (only the row of `generation`, when given); best effort: a
        row left behind is removed by the next renewal."""
        try:
            if generation is not None:
                row = self._table.get_entity(ACTIVE_PARTITION, job_id)
                if row.get("Generation") != generation:
                    return
                etag = row.metadata["etag"]
            if etag is None:
                self._table.delete_entity(ACTIVE_PARTITION, job_id)
            else:
                self._table.delete_entity(
                    ACTIVE_PARTITION, job_id, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceNotFoundError, ResourceModifiedError):
            return
        except Exception as exc:  # noqa: BLE001 - the next renewal removes it
            log.warning("Could not remove job %s from the active index (%s)", job_id, type(exc).__name__)


def count_in_flight(index: list[TableEntity]) -> int:
    """Jobs in flight, from the rows of the active index."""
    return sum(1 for row in index if not is_pause_row(row))


def _to_entity(record: LockRecord, sealer: Sealer | None = None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": record.job_id,
        "JobType": record.job_type,
        "LockToken": sealer.seal(record.lock_token, _token_context(record.job_id)) if sealer else record.lock_token,
        "Generation": record.generation,
        "LockExpiresUtc": record.lock_expires,
        "State": record.state,
        "Attempts": record.attempts,
        "LastError": record.last_error[:1000],
        "CreatedUtc": record.created,
        "UpdatedUtc": record.updated,
        "Locks": record.locks,
        "Releases": record.releases,
        "WriteId": uuid.uuid4().hex,
    }
    if record.parameters:
        entity["Parameters"] = record.parameters
    if record.first_locked is not None:
        entity["FirstLockedUtc"] = record.first_locked
    if record.swept is not None:
        entity["SweptUtc"] = record.swept
    if record.finished is not None:
        entity["FinishedUtc"] = record.finished
    return entity


def _token_context(job_id: str) -> str:
    return f"{PARTITION}/{job_id}/LockToken"


def _open_token(entity: TableEntity, sealer: Sealer | None) -> str:
    """The lock token: opened when sealed (a plain one, written before sealing, is read as it is)."""
    stored = str(entity.get("LockToken", ""))
    if not is_sealed(stored):
        return stored
    if sealer is None:
        return ""
    try:
        return sealer.open(stored, _token_context(entity["RowKey"]))
    except SealedValueUnreadable:  # sealed under another connection file: this lock cannot be used
        log.warning("job %s: its lock token was sealed under another connection file", entity["RowKey"])
        return ""


def _from_entity(entity: TableEntity, sealer: Sealer | None = None) -> LockRecord:
    return LockRecord(
        job_id=entity["RowKey"],
        job_type=entity.get("JobType", ""),
        lock_token=_open_token(entity, sealer),
        lock_expires=entity["LockExpiresUtc"],
        state=RecordState(entity.get("State", RecordState.QUEUED)),
        attempts=read_int(entity, "Attempts"),
        last_error=entity.get("LastError", ""),
        created=entity.get("CreatedUtc") or utc_now(),
        updated=entity.get("UpdatedUtc") or utc_now(),
        finished=entity.get("FinishedUtc"),
        first_locked=entity.get("FirstLockedUtc"),
        swept=entity.get("SweptUtc"),
        locks=read_int(entity, "Locks") or 1,
        releases=read_int(entity, "Releases"),
        parameters=entity.get("Parameters", ""),
        stored_generation=entity.get("Generation", ""),
        etag=entity.metadata["etag"],
    )


def log_job_end(record: LockRecord, state: RecordState, detail: str) -> None:
    """The one line per job outcome that operators (and the deployment's alerts) look for. Call it only
    after the record's own change to `state` succeeded (see ending.end_job), so it is logged once."""
    level = logging.INFO if state in (RecordState.COMPLETED, RecordState.PARTIALLY_COMPLETED) else logging.WARNING
    log.log(
        level,
        "Job ended: state=%s job_id=%s type=%s%s",
        state,
        record.job_id,
        record.job_type,
        f" detail={detail[:300]}" if detail else "",
        extra={"job_id": record.job_id, "job_type": record.job_type, "job_event": state,
               "generation": record.generation},
    )  # fmt: skip
    metrics.job_ended(state, record.job_type)  # telemetry: clearance.jobs.ended
