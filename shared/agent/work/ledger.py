"""A job's plan and its work items in Azure Table Storage: what is to be done, and what is done.

The ledger lives in the lock-record table, one partition per job (PartitionKey = job id), so a job's
items and its plan row can change together in one entity-group transaction:

    RowKey  job-<generation>                        the job as the Registry offered it (type, parameters),
                                                    written once when it was locked
            plan-<generation>                       the plan: which planning attempt won, counters, outcome
            item-<generation>-<plan id>-<item>      one work item: state, attempts, owner, VMS ticket, files
            gaps-<generation>-<plan id>-<n>         parts of the windows with no recording, 100 to a row

The generation is derived from the lock token: the ledger belongs to the lock. When a job is locked
again later (after a release or a lost lock), its new plan has a new generation and starts fresh; no
file of an old generation is ever counted under the new one. The plan id names one planning attempt:
two planners of the same lock (a job message delivered twice) write their items under their own plan
ids, and only the one whose plan row is created first counts; the other's rows are never read.

Item states move forward only: Pending → Running → Delivered | Missing | Failed (Running → Pending
when a run stops early and leaves the item to a later run). Every write is an ETag compare-and-swap
carrying a fresh `WriteId`: a write whose answer was lost (and that the SDK retried with the old ETag,
so it was answered 412) is recognised as applied by reading the row back, instead of being mistaken for
another run's. Byte counts are 64-bit (azure-data-tables sends a plain int as Edm.Int32).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import EdmType, EntityProperty, TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.agent.states import FINAL_ITEM_STATES, FailureKind, FileKind, FileState, ItemKind, ItemState, PlanState

TRANSACTION_LIMIT = 100
MAX_TEXT = 30_000
"""Characters in one string property: Table Storage allows 64 KiB, i.e. 32 K UTF-16 characters."""
GAPS_PER_ROW = 100
MAX_LISTED = 200
"""Missing spans kept on one item (an item is at most an hour of one camera); more are summarised."""
MAX_JOB_CHUNKS = 16
"""The job's parameters in up to 16 properties of 30,000 characters: 480,000 characters, 960 KB of UTF-16,
under Table Storage's 1 MiB entity (about 12,000 camera ids). Larger jobs are refused at lock time."""


class LedgerRowChanged(Exception):
    """The entity changed since it was read (another run got there first)."""


class JobTooLarge(ValueError):
    """The job's parameters do not fit one Table Storage entity."""


def generation_of(lock_token: str) -> str:
    """A short, stable name for one lock of a job (the token itself is never put in keys or messages)."""
    return hashlib.sha256(lock_token.encode("utf-8")).hexdigest()[:16]


def new_plan_id() -> str:
    return uuid.uuid4().hex[:8]


def utc_now() -> datetime:
    return datetime.now(UTC)


def int64(value: int) -> EntityProperty:
    """A 64-bit Table Storage integer (a plain int is sent as Edm.Int32 and refused from 2^31 on)."""
    return EntityProperty(int(value), EdmType.INT64)


def read_int(entity: TableEntity | dict[str, Any], name: str) -> int:
    """An integer property, whether stored as Int32 or Int64 (read back as an EntityProperty)."""
    value = entity.get(name)
    if isinstance(value, EntityProperty):
        value = value.value
    return int(value or 0)


@dataclass(frozen=True)
class FileEntry:
    """One file an item delivers, and how far it got."""

    name: str
    kind: FileKind
    """The Complete* call it needs."""
    facts: dict[str, Any]
    """What Complete* reports besides size and hash (camera, times, capture time, device count)."""
    state: FileState = FileState.NEW
    file_id: str = ""
    size: int = 0
    sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Kind": self.kind,
            "Facts": self.facts,
            "State": self.state,
            "FileId": self.file_id,
            "Size": self.size,
            "Sha256": self.sha256,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileEntry:
        return cls(
            name=data["Name"],
            kind=FileKind(data["Kind"]),
            facts=dict(data.get("Facts") or {}),
            state=FileState(data.get("State", "")),
            file_id=data.get("FileId", ""),
            size=int(data.get("Size") or 0),
            sha256=data.get("Sha256", ""),
        )


@dataclass(frozen=True)
class WorkItem:
    job_id: str
    generation: str
    item_id: str
    """`<plan id>-<id within the plan>`: unique across planning attempts of one lock."""
    kind: ItemKind
    camera_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    camera_ids: tuple[str, ...] = ()
    state: ItemState = ItemState.PENDING
    attempts: int = 0
    """Runs started (claims), crashed ones included."""
    failures: int = 0
    """Runs that ended in an error the agent caught (transient; retried later)."""
    waits: int = 0
    """Runs that ended cleanly waiting for the VMS (an export not ready yet): never held against the item."""
    owner: str = ""
    heartbeat: datetime | None = None
    due: datetime | None = None
    """When the item's message becomes visible again (set when it is handed back to the queue)."""
    last_error: str = ""
    failure: FailureKind | None = None
    """For Failed items: TRANSIENT (gave up retrying), PERMANENT, or TIMED_OUT (the VMS never finished)."""
    ticket: dict[str, Any] | None = None
    ticket_started: datetime | None = None
    files: tuple[FileEntry, ...] = ()
    missing: tuple[str, ...] = ()
    size_hint: int = 0
    bytes_in_flight: int = 0
    updated: datetime = field(default_factory=utc_now)
    etag: str | None = field(default=None, compare=False)

    @property
    def final(self) -> bool:
        return self.state in FINAL_ITEM_STATES

    @property
    def unfinished_runs(self) -> int:
        """Runs that never reported back (their worker died): started, minus those that failed or waited."""
        return max(0, self.attempts - self.failures - self.waits)

    @property
    def bytes_delivered(self) -> int:
        return sum(f.size for f in self.files if f.state == FileState.DELIVERED)

    @property
    def files_delivered(self) -> int:
        return sum(1 for f in self.files if f.state == FileState.DELIVERED)

    @property
    def plan_id(self) -> str:
        return self.item_id.split("-", 1)[0]

    def file(self, name: str) -> FileEntry | None:
        return next((f for f in self.files if f.name == name), None)

    def with_file(self, entry: FileEntry) -> WorkItem:
        if self.file(entry.name) is None:
            return replace(self, files=(*self.files, entry))
        return replace(self, files=tuple(entry if f.name == entry.name else f for f in self.files))

    def label(self) -> str:
        if self.kind == ItemKind.MEDIA_SEGMENT and self.start and self.end:
            return f"{self.camera_id} {self.start:%Y-%m-%dT%H:%M:%S}Z–{self.end:%H:%M:%S}Z"
        if self.kind == ItemKind.THUMBNAIL_BATCH:
            return f"{len(self.camera_ids)} camera(s)"
        return self.kind


@dataclass(frozen=True)
class Plan:
    job_id: str
    generation: str
    job_type: str
    plan_id: str = ""
    state: PlanState = PlanState.PLANNED
    items_total: int = 0
    items_remaining: int = 0
    items_delivered: int = 0
    items_missing: int = 0
    items_failed: int = 0
    files_delivered: int = 0
    bytes_delivered: int = 0
    bytes_expected: int = 0
    gaps_total: int = 0
    """Gaps found while planning (no recording); listed in the plan's gaps rows, reported with the outcome."""
    progress_reported_at: datetime | None = None
    outcome: str = ""
    outcome_message: str = ""
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    etag: str | None = field(default=None, compare=False)

    @property
    def item_prefix(self) -> str:
        """The RowKey prefix of this plan's items (a plan stored before plan ids existed has none)."""
        return f"item-{self.generation}-{self.plan_id}-" if self.plan_id else f"item-{self.generation}-"

    def owns(self, item: WorkItem) -> bool:
        return item.generation == self.generation and (not self.plan_id or item.plan_id == self.plan_id)


@dataclass(frozen=True)
class OfferedJob:
    """The job as the Registry offered it, kept for the lock's planners (messages carry ids only)."""

    job_id: str
    generation: str
    job_type: str
    parameters: dict[str, Any]
    created: datetime | None = None


class Ledger:
    """Plans and items of every job, in the table that also holds the lock records."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def table(self) -> TableClient:
        return self._table

    # ---- the offered job -------------------------------------------------------------------------------

    def put_job(self, job: OfferedJob) -> None:
        """Written once, right after the lock; JobTooLarge when the parameters cannot be stored."""
        text = json.dumps(job.parameters, separators=(",", ":"))
        chunks = [text[start : start + MAX_TEXT] for start in range(0, len(text), MAX_TEXT)] or [""]
        if len(chunks) > MAX_JOB_CHUNKS:
            raise JobTooLarge(
                f"the job's parameters are {len(text):,} characters; at most {MAX_JOB_CHUNKS * MAX_TEXT:,}"
            )
        entity: dict[str, Any] = {
            "PartitionKey": job.job_id,
            "RowKey": _job_key(job.generation),
            "Kind": "job",
            "Generation": job.generation,
            "JobType": job.job_type,
            "Chunks": len(chunks),
        }
        entity.update({f"Parameters{index:02d}": chunk for index, chunk in enumerate(chunks)})
        _optional(entity, "CreatedUtc", job.created)
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def get_job(self, job_id: str, generation: str) -> OfferedJob | None:
        try:
            entity = self._table.get_entity(job_id, _job_key(generation))
        except ResourceNotFoundError:
            return None
        text = "".join(entity.get(f"Parameters{index:02d}", "") for index in range(read_int(entity, "Chunks")))
        return OfferedJob(
            job_id, generation, entity.get("JobType", ""), json.loads(text or "{}"), entity.get("CreatedUtc")
        )

    # ---- plans --------------------------------------------------------------------------------------

    def get_plan(self, job_id: str, generation: str) -> Plan | None:
        try:
            return _plan_from(self._table.get_entity(job_id, _plan_key(generation)))
        except ResourceNotFoundError:
            return None

    def create_plan(self, plan: Plan, items: list[WorkItem], gaps: list[str]) -> tuple[Plan, bool]:
        """Writes every item and gap row of this planning attempt, then the plan row (its existence says
        the items are complete); only rows of the plan id the plan row names are ever read.

        Returns the stored plan and whether this call created it (False: another planner of the same lock
        got there first; its plan stands and this attempt's rows are simply never read)."""
        stored, created, _ = self.create_plan_with_items(plan, items, gaps)
        return stored, created

    def create_plan_with_items(
        self, plan: Plan, items: list[WorkItem], gaps: list[str]
    ) -> tuple[Plan, bool, list[WorkItem]]:
        """`create_plan`, also returning the items as stored (with their ETags, when this call created them).

        A plan that fits one entity-group transaction with its rows (most do: one item, a few gaps) is
        written in that one request, the plan row created (refused if it exists) in the same transaction."""
        plan = replace(plan, gaps_total=len(gaps))
        rows = [_item_entity(item) for item in items]
        rows += [
            _gaps_entity(plan, number, gaps[start : start + GAPS_PER_ROW])
            for number, start in enumerate(range(0, len(gaps), GAPS_PER_ROW))
        ]
        last_batch = rows[(max(len(rows) - 1, 0) // TRANSACTION_LIMIT) * TRANSACTION_LIMIT :]
        if len(last_batch) == TRANSACTION_LIMIT:
            last_batch = []  # the plan row gets a transaction of its own
        earlier = rows[: len(rows) - len(last_batch)]
        for start in range(0, len(earlier), TRANSACTION_LIMIT):
            operations = [
                ("upsert", row, {"mode": UpdateMode.REPLACE}) for row in earlier[start : start + TRANSACTION_LIMIT]
            ]
            self._transact(operations, applied=lambda: False)  # upserts: sending them again is harmless
        final: list[Any] = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in last_batch]
        final.append(("create", _plan_entity(plan)))
        try:  # applied: the plan row exists (ours, or another planner's)
            results = self._transact(final, applied=lambda: self.get_plan(plan.job_id, plan.generation) is not None)
        except (TableTransactionError, ResourceExistsError) as exc:
            if not _already_exists(exc):
                raise
            results = None
        if results is None:
            return self._stored_plan(plan)
        etags = [result["etag"] for result in results]
        first = len(earlier)  # items written by earlier transactions keep no ETag: read back if ever needed
        stored = [replace(item, etag=etags[n - first]) if n >= first else item for n, item in enumerate(items)]
        return replace(plan, etag=etags[-1]), True, stored

    def _transact(self, operations: list[Any], *, applied: Callable[[], bool]) -> list[Mapping[str, Any]] | None:
        """Submit one entity-group transaction; None when it was applied but its answer lost.

        A transaction is a POST, which the SDK does not send again when its answer never comes (a connection
        reset, a timeout): `applied()` then says from the rows whether it was, and one that was not is sent
        once more — the same rows on the same ETags (or upserts), so it can never apply twice."""
        for attempt in range(2):
            try:
                return list(self._table.submit_transaction(operations))
            except (ServiceRequestError, ServiceResponseError):
                if applied():
                    return None
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _stored_plan(self, plan: Plan) -> tuple[Plan, bool, list[WorkItem]]:
        """The plan row exists already: another planner's (its plan stands), or ours, applied with its
        answer lost (then this attempt created it: its items are read back)."""
        existing = self.get_plan(plan.job_id, plan.generation)
        if existing is None:
            raise LedgerRowChanged(f"job {plan.job_id}: the plan vanished while being created")
        if existing.plan_id != plan.plan_id:
            return existing, False, []
        return existing, True, self.items(existing)

    def save_plan(self, plan: Plan) -> Plan:
        return replace(plan, etag=self._replace(_plan_entity(plan), plan.etag))

    def mark_plan_running(self, plan: Plan) -> Plan:
        """Planned → Running after every item was enqueued. An item may finish (changing the plan) in the
        meantime: that is no conflict, so this retries on the plan's newest state."""
        current: Plan | None = plan
        for _ in range(10):
            if current is None or current.state != PlanState.PLANNED:
                return current or plan
            try:
                return self.save_plan(replace(current, state=PlanState.UNDER_WAY))
            except LedgerRowChanged:
                current = self.get_plan(plan.job_id, plan.generation)
        raise LedgerRowChanged(f"job {plan.job_id}: the plan kept changing")

    def mark_completing(self, plan: Plan) -> Plan:
        """A plan with no items at all goes straight to its completion."""
        return self.save_plan(replace(plan, state=PlanState.COMPLETING))

    def gaps(self, plan: Plan) -> list[str]:
        found: list[str] = []
        for entity in self._range(plan.job_id, f"gaps-{plan.generation}-{plan.plan_id}-"):
            found.extend(json.loads(entity.get("Gaps") or "[]"))
        return found

    # ---- items --------------------------------------------------------------------------------------

    def get_item(self, job_id: str, generation: str, item_id: str) -> WorkItem | None:
        try:
            return _item_from(self._table.get_entity(job_id, _item_key(generation, item_id)))
        except ResourceNotFoundError:
            return None

    def items(self, plan: Plan) -> list[WorkItem]:
        """The items of the plan's own planning attempt."""
        return [_item_from(entity) for entity in self._range(plan.job_id, plan.item_prefix)]

    def save_item(self, item: WorkItem) -> WorkItem:
        """Compare-and-swap against the ETag the item was read with."""
        return replace(item, etag=self._replace(_item_entity(item), item.etag))

    def finish_item(self, item: WorkItem, plan: Plan) -> tuple[WorkItem, Plan]:
        """The item (already in its final state) and the plan (already counting it), both or neither. A
        transaction whose answer was lost is recognised by the item row holding its `WriteId`."""
        item_row, plan_row = _item_entity(item), _plan_entity(plan)
        operations = [("update", item_row, _if_match(item.etag)), ("update", plan_row, _if_match(plan.etag))]
        stored: TableEntity | None = None

        def applied() -> bool:  # the item row holds this transaction's WriteId
            nonlocal stored
            stored = self._get(item.job_id, item_row["RowKey"])
            return stored is not None and stored.get("WriteId") == item_row["WriteId"]

        try:
            results = self._transact(operations, applied=applied)
        except TableTransactionError as exc:
            if exc.status_code not in (404, 412) and getattr(exc, "error_code", None) not in (
                "UpdateConditionNotSatisfied",
                "ResourceNotFound",
            ):
                raise
            if not applied():
                raise LedgerRowChanged(
                    f"job {item.job_id}: item {item.item_id} or its plan changed meanwhile"
                ) from None
            results = None  # applied, its answer lost; the SDK's retry met our own new ETags
        if results is None:  # applied: the new ETags are read back
            assert stored is not None
            current_plan = self.get_plan(plan.job_id, plan.generation)
            return replace(item, etag=stored.metadata["etag"]), replace(
                plan, etag=current_plan.etag if current_plan else None
            )
        return replace(item, etag=results[0]["etag"]), replace(plan, etag=results[1]["etag"])

    # ---- retention ----------------------------------------------------------------------------------

    def delete_partition(self, job_id: str) -> int:
        """Every row of the job's partition (its offered job, plans, items, gaps of every lock)."""
        keys = [e["RowKey"] for e in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": job_id},
                                                                  select=["RowKey"])]  # fmt: skip
        for start in range(0, len(keys), TRANSACTION_LIMIT):
            batch = keys[start : start + TRANSACTION_LIMIT]
            self._table.submit_transaction([("delete", {"PartitionKey": job_id, "RowKey": key}) for key in batch])
        return len(keys)

    # ---- plumbing -----------------------------------------------------------------------------------

    def _range(self, partition: str, prefix: str) -> Iterator[TableEntity]:
        query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
        high = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        yield from self._table.query_entities(query, parameters={"pk": partition, "low": prefix, "high": high})

    def _get(self, partition: str, row: str) -> TableEntity | None:
        try:
            return self._table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    def _replace(self, entity: dict[str, Any], etag: str | None) -> str:
        try:
            metadata = self._table.update_entity(entity, **_if_match(etag))
        except (ResourceModifiedError, ResourceNotFoundError):
            stored = self._get(entity["PartitionKey"], entity["RowKey"])
            if stored is not None and stored.get("WriteId") == entity["WriteId"]:
                return str(stored.metadata["etag"])  # applied; the SDK's retry met our own new ETag
            raise LedgerRowChanged(f"job {entity['PartitionKey']}: {entity['RowKey']} changed meanwhile") from None
        return str(metadata["etag"])


def _already_exists(exc: Exception) -> bool:
    """A transaction (or create) refused because a row it creates exists (409 EntityAlreadyExists)."""
    return isinstance(exc, ResourceExistsError) or (
        getattr(exc, "status_code", None) == 409 or getattr(exc, "error_code", None) == "EntityAlreadyExists"
    )


def _if_match(etag: str | None) -> dict[str, Any]:
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


def _job_key(generation: str) -> str:
    return f"job-{generation}"


def _plan_key(generation: str) -> str:
    return f"plan-{generation}"


def _item_key(generation: str, item_id: str) -> str:
    return f"item-{generation}-{item_id}"


def _text(value: str) -> str:
    return value[:MAX_TEXT]


def _json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text) > MAX_TEXT:
        raise ValueError(f"ledger value too large for Table Storage ({len(text)} characters)")
    return text


def _listed(values: tuple[str, ...]) -> str:
    """A list of missing spans that always fits one property: the first ones, then how many more."""
    shown = [value[:300] for value in values[:MAX_LISTED]]
    if len(values) > MAX_LISTED:
        shown.append(f"and {len(values) - MAX_LISTED} more")
    return _json(shown)


def _optional(entity: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        entity[name] = value


def _plan_entity(plan: Plan) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": plan.job_id,
        "RowKey": _plan_key(plan.generation),
        "Kind": "plan",
        "Generation": plan.generation,
        "PlanId": plan.plan_id,
        "JobType": plan.job_type,
        "State": plan.state,
        "ItemsTotal": plan.items_total,
        "ItemsRemaining": plan.items_remaining,
        "ItemsDelivered": plan.items_delivered,
        "ItemsMissing": plan.items_missing,
        "ItemsFailed": plan.items_failed,
        "FilesDelivered": plan.files_delivered,
        "BytesDelivered": int64(plan.bytes_delivered),
        "BytesExpected": int64(plan.bytes_expected),
        "GapsTotal": plan.gaps_total,
        "Outcome": plan.outcome,
        "OutcomeMessage": _text(plan.outcome_message),
        "CreatedUtc": plan.created,
        "UpdatedUtc": utc_now(),
        "WriteId": uuid.uuid4().hex,
    }
    _optional(entity, "ProgressReportedUtc", plan.progress_reported_at)
    return entity


def _plan_from(entity: TableEntity) -> Plan:
    return Plan(
        job_id=entity["PartitionKey"],
        generation=entity["Generation"],
        job_type=entity.get("JobType", ""),
        plan_id=entity.get("PlanId", ""),
        state=PlanState(entity.get("State", PlanState.PLANNED)),
        items_total=read_int(entity, "ItemsTotal"),
        items_remaining=read_int(entity, "ItemsRemaining"),
        items_delivered=read_int(entity, "ItemsDelivered"),
        items_missing=read_int(entity, "ItemsMissing"),
        items_failed=read_int(entity, "ItemsFailed"),
        files_delivered=read_int(entity, "FilesDelivered"),
        bytes_delivered=read_int(entity, "BytesDelivered"),
        bytes_expected=read_int(entity, "BytesExpected"),
        gaps_total=read_int(entity, "GapsTotal"),
        progress_reported_at=entity.get("ProgressReportedUtc"),
        outcome=entity.get("Outcome", ""),
        outcome_message=entity.get("OutcomeMessage", ""),
        created=entity.get("CreatedUtc") or utc_now(),
        updated=entity.get("UpdatedUtc") or utc_now(),
        etag=entity.metadata["etag"],
    )


def _gaps_entity(plan: Plan, number: int, gaps: list[str]) -> dict[str, Any]:
    return {
        "PartitionKey": plan.job_id,
        "RowKey": f"gaps-{plan.generation}-{plan.plan_id}-{number:04d}",
        "Kind": "gaps",
        "Gaps": _json([gap[:190] for gap in gaps]),
    }


def _item_entity(item: WorkItem) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": item.job_id,
        "RowKey": _item_key(item.generation, item.item_id),
        "Kind": "item",
        "Generation": item.generation,
        "ItemId": item.item_id,
        "ItemKind": item.kind,
        "CameraIds": _json(list(item.camera_ids)),
        "State": item.state,
        "Attempts": item.attempts,
        "Failures": item.failures,
        "Waits": item.waits,
        "Owner": item.owner,
        "LastError": _text(item.last_error),
        "Failure": item.failure or "",
        "Ticket": _json(item.ticket) if item.ticket is not None else "",
        "Files": _json([f.to_json() for f in item.files]),
        "Missing": _listed(item.missing),
        "SizeHint": int64(item.size_hint),
        "BytesInFlight": int64(item.bytes_in_flight),
        "BytesDelivered": int64(item.bytes_delivered),
        "FilesDelivered": item.files_delivered,
        "UpdatedUtc": utc_now(),
        "WriteId": uuid.uuid4().hex,
    }
    _optional(entity, "CameraId", item.camera_id)
    _optional(entity, "StartUtc", item.start)
    _optional(entity, "EndUtc", item.end)
    _optional(entity, "HeartbeatUtc", item.heartbeat)
    _optional(entity, "DueUtc", item.due)
    _optional(entity, "TicketStartedUtc", item.ticket_started)
    return entity


def _item_from(entity: TableEntity) -> WorkItem:
    ticket = entity.get("Ticket") or ""
    return WorkItem(
        job_id=entity["PartitionKey"],
        generation=entity["Generation"],
        item_id=entity["ItemId"],
        kind=ItemKind(entity["ItemKind"]),
        camera_id=entity.get("CameraId"),
        start=entity.get("StartUtc"),
        end=entity.get("EndUtc"),
        camera_ids=tuple(json.loads(entity.get("CameraIds") or "[]")),
        state=ItemState(entity.get("State", ItemState.PENDING)),
        attempts=read_int(entity, "Attempts"),
        failures=read_int(entity, "Failures"),
        waits=read_int(entity, "Waits"),
        owner=entity.get("Owner", ""),
        heartbeat=entity.get("HeartbeatUtc"),
        due=entity.get("DueUtc"),
        last_error=entity.get("LastError", ""),
        failure=FailureKind(entity["Failure"]) if entity.get("Failure") else None,
        ticket=json.loads(ticket) if ticket else None,
        ticket_started=entity.get("TicketStartedUtc"),
        files=tuple(FileEntry.from_json(f) for f in json.loads(entity.get("Files") or "[]")),
        missing=tuple(json.loads(entity.get("Missing") or "[]")),
        size_hint=read_int(entity, "SizeHint"),
        bytes_in_flight=read_int(entity, "BytesInFlight"),
        updated=entity.get("UpdatedUtc") or utc_now(),
        etag=entity.metadata["etag"],
    )
